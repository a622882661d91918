"""Every document that the docs link to, and that code, tests and docs cite, is in the repository.

A clone has only what the repository holds: a link to a file outside it, or to one that was
moved or renamed since, sends the reader nowhere. Checked here:

* README.md and docs/*.md: each relative Markdown link names an existing file, and its
  ``#anchor`` a heading of that file (GitHub's anchors); each path of a repository file they
  cite (``docs/...``, ``flask_jobmonitor/...``, ``tests/...``...) exists.
* Those and the package, tests, example app, benchmarks and scripts: each ``*.md`` they name
  exists, and a section cited with it in quotes (``docs/developers.md, "Migrations"`` or
  ``docs/reference.md ("Job statuses")``) is a heading of that file.
* Nothing cites the design brief that was kept outside the repository: docs/architecture.md
  holds what the code relies on.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The design brief kept outside the repository (spelled in two parts so this file does not cite it).
OUTSIDE_BRIEF = "DESIGN" + ".md"

#: Folders whose text files are scanned for citations, and the suffixes of those files.
SCANNED_DIRS = ("flask_jobmonitor", "tests", "example_app", "bench", "scripts", "docs", ".ci")
SCANNED_SUFFIXES = frozenset({".py", ".md", ".html", ".js", ".css", ".sh", ".toml", ".cfg", ".mako", ""})
SKIPPED_PARTS = frozenset({"__pycache__", "results", "screenshots", "node_modules"})

#: Top-level folders of the repository: a path starting with one of them is a citation of a file.
REPO_PATH = re.compile(r"(?<![\w/.-])((?:flask_jobmonitor|tests|docs|example_app|bench|scripts)/[\w./-]*\w)")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.md)\b")
#: A section cited in quotes after its document: ``, "..."``, ``, section "..."`` or ``("...")``.
CITED_SECTION = re.compile(r"docs/([\w-]+\.md)(?:,\s*(?:section\s+)?|\s+\()\"([^\"]+)\"")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _scanned_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SCANNED_DIRS:
        for path in sorted((ROOT / folder).rglob("*")):
            relative = path.relative_to(ROOT).parts
            if path.is_file() and path.suffix in SCANNED_SUFFIXES and not SKIPPED_PARTS & set(relative):
                files.append(path)
    return files


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _without_code_blocks(text: str) -> str:
    return FENCE.sub("", text)


def _heading_text(heading: str) -> str:
    """A heading as GitHub shows it: links reduced to their text, no code marks."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return heading.replace("`", "").strip()


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", _heading_text(heading).lower()).replace(" ", "-")


@cache
def _headings(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The headings of a Markdown file (lower case) and their anchors, duplicates numbered."""
    texts: set[str] = set()
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for match in HEADING.finditer(_without_code_blocks(path.read_text(encoding="utf-8"))):
        texts.add(" ".join(_heading_text(match.group(1)).lower().split()))
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return frozenset(texts), frozenset(anchors)


def _resolve_markdown_name(source: Path, name: str) -> Path | None:
    """A ``*.md`` named in ``source``: next to it, at the top of the repository, or in docs/."""
    for base in (source.parent, ROOT, ROOT / "docs"):
        if (base / name).is_file():
            return base / name
    return None


def test_relative_markdown_links_reach_an_existing_file_and_heading() -> None:
    broken: list[str] = []
    for path in _markdown_files():
        for match in MARKDOWN_LINK.finditer(_without_code_blocks(path.read_text(encoding="utf-8"))):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, anchor = target.partition("#")
            linked = (path.parent / file_part).resolve() if file_part else path
            if not linked.exists() or ROOT not in (linked, *linked.parents):
                broken.append(f"{_name(path)}: ({target}): no such file in the repository")
            elif anchor and linked.suffix == ".md" and anchor not in _headings(linked)[1]:
                broken.append(f"{_name(path)}: ({target}): {_name(linked)} has no heading with that anchor")
    assert not broken, "\n".join(broken)


def test_repository_paths_cited_by_the_docs_exist() -> None:
    missing: list[str] = []
    for path in _markdown_files():
        text = path.read_text(encoding="utf-8")
        for match in REPO_PATH.finditer(text):
            if re.match(r"[\w./-]*[<*{]", text[match.end() :]):
                continue  # a pattern such as bench/results/list-<database>-<rows>.json
            if not (ROOT / match.group(1).rstrip("/.")).exists():
                missing.append(f"{_name(path)}: {match.group(1)}")
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_markdown_files_and_sections_cited_anywhere_exist() -> None:
    missing: list[str] = []
    for path in _scanned_files():
        text = path.read_text(encoding="utf-8")
        for match in MARKDOWN_NAME.finditer(text):
            name = match.group(1)
            if name != OUTSIDE_BRIEF and _resolve_markdown_name(path, name) is None:
                missing.append(f"{_name(path)}: {name}")
        for match in CITED_SECTION.finditer(text):
            document = ROOT / "docs" / match.group(1)
            section = " ".join(re.sub(r"\n\s*#", " ", match.group(2)).lower().split())
            if document.is_file() and section not in _headings(document)[0]:
                missing.append(f'{_name(path)}: docs/{match.group(1)} has no section "{match.group(2)}"')
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def _files_citing_the_outside_brief() -> set[str]:
    return {_name(path) for path in _scanned_files() if OUTSIDE_BRIEF in path.read_text(encoding="utf-8")}


def test_nothing_cites_the_design_brief_kept_outside_the_repository() -> None:
    citing = _files_citing_the_outside_brief()
    assert not citing, f"{OUTSIDE_BRIEF} is not in the repository; cite docs/architecture.md instead: {sorted(citing)}"
