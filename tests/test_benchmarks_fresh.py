"""docs/performance.md quotes only benchmark results that describe the code in HEAD.

The rules are bench/measured.py's: each results file records the commit it measured; it is
stale once a later commit changed the code its benchmark measures (bench/measured.py MEASURES),
or when the commit is not in HEAD's history. Re-run the benchmark and commit its results (and
the figures in docs/performance.md) in the same change as the code.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _measured() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_measured", ROOT / "bench" / "measured.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _history_available() -> str | None:
    done = subprocess.run(
        ["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return "not a git checkout"
    if done.stdout.strip() == "true":
        return "a shallow clone has no history to compare commits with"
    return None


def test_every_quoted_results_file_is_newer_than_the_code_it_measures():
    reason = _history_available()
    if reason:
        pytest.skip(reason)
    measured = _measured()
    assert measured.quoted_results(), "docs/performance.md quotes no results file"
    stale = measured.stale_results()
    assert not stale, "re-run these benchmarks and commit their results:\n" + "\n".join(map(str, stale))


def test_every_benchmark_script_records_its_commit():
    for script in sorted((ROOT / "bench").glob("*.py")):
        text = script.read_text()
        if "write_text(" in text and "results" in text:
            assert "revision()" in text, f"{script.name} writes results without revision()"


def test_a_results_file_is_stale_once_the_code_it_measures_changes(tmp_path, monkeypatch):
    # the check itself, on this repository's history: the first commit that touched listing.py (under any path)
    # is older than its last change, so a list results file measured there is reported stale
    measured = _measured()
    if _history_available():
        pytest.skip(_history_available())
    first = measured.git("log", "--follow", "--format=%H", "--", "flask_jobmonitor/web/listing.py").stdout.split()[
        ::-1
    ]  # oldest first (git does not follow a rename with --reverse)
    if len(first) < 2:
        pytest.skip("listing.py has a single commit")
    results = tmp_path / "results"
    results.mkdir()
    (results / "list-postgresql-1m.json").write_text(f'{{"revision": {{"commit": "{first[0]}", "dirty": false}}}}')
    (results / "stop.json").write_text("{}")
    document = tmp_path / "performance.md"
    document.write_text("See bench/results/list-postgresql-1m.json and bench/results/stop.json.")
    monkeypatch.setattr(measured, "RESULTS", results)
    monkeypatch.setattr(measured, "DOCUMENT", document)
    stale = {entry.results_file: entry.reason for entry in measured.stale_results()}
    assert "changed since" in stale["list-postgresql-1m.json"]
    assert "records no commit" in stale["stop.json"]
