"""The action registry (``control.REGISTRY``, jobs/actions.py): every action defined once, the
pages' button looks read from it, no web import on the jobs side, and the docs' tables of actions
(the buttons and their statuses in admins.md, who may take them in reference.md) checked against
it so they cannot drift."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from flask_jobmonitor import permissions
from flask_jobmonitor.jobs import actions, control
from flask_jobmonitor.records.status import JobStatus
from flask_jobmonitor.web import presenters

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def table_after(path: Path, header: str) -> list[list[str]]:
    """The rows (cells stripped) of the Markdown table whose header line starts with ``header``."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:  # the header and its |---| line
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    assert rows, f"no rows under {header!r} in {path.name}"
    return rows


#: A status as the docs name it: the word on its badge ("waiting for children").
STATUS_WORDS = {status: presenters.STATUS_LOOKS[status.value].label.lower() for status in JobStatus}


def statuses_named(text: str) -> frozenset[JobStatus]:
    return frozenset(status for status, word in STATUS_WORDS.items() if re.search(rf"\b{word}\b", text))


def test_the_registry_defines_each_action_once_in_the_pages_order():
    assert control.ACTIONS == (
        "stop",
        "force_stop",
        "resume",
        "cancel",
        "restart",
        "delete",
        "set_low_priority",
        "set_normal_priority",
    )
    assert all(isinstance(entry, actions.Action) and entry.name == name for name, entry in control.REGISTRY.items())
    assert dict(control.PAST_TENSE) == {name: entry.past_tense for name, entry in control.REGISTRY.items()}
    labels = [entry.look.label for entry in control.REGISTRY.values()]
    assert len(set(labels)) == len(labels), "two buttons with the same text"


def test_the_pages_button_looks_are_the_registrys():
    assert dict(presenters.ACTION_LOOKS) == {name: entry.look for name, entry in control.REGISTRY.items()}


@pytest.mark.parametrize("entry", control.REGISTRY.values(), ids=lambda entry: entry.name)
def test_each_action_asks_a_permission_the_permissions_object_has(entry):
    assert callable(getattr(permissions.JobPermissions, entry.permission, None)), entry.permission
    assert entry.statuses and entry.statuses <= set(JobStatus)


def imported_modules(path: Path) -> list[str]:
    """The modules ``path`` imports, relative ones with their dots ("..web.presenters")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            found.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("module", ["jobs/actions.py", "jobs/control.py"])
def test_the_action_modules_import_nothing_from_web(module):
    imported = imported_modules(ROOT / "flask_jobmonitor" / module)
    assert not [name for name in imported if re.match(r"(\.\.|flask_jobmonitor\.)web(\.|$)", name)]


def test_the_admins_table_of_buttons_matches_the_registry():
    """admins.md, "What you can do with a job": one row per button (Low / Normal priority share
    one), in the registry's order, each with the statuses the action fits."""
    rows = table_after(DOCS / "admins.md", "| button | for jobs that are |")
    documented: list[tuple[str, frozenset[JobStatus]]] = []
    for first, statuses, *_ in rows:
        labels = re.findall(r"\*\*(.+?)\*\*", first)
        assert labels, first
        documented.extend((label, statuses_named(statuses)) for label in labels)
    assert documented == [(entry.look.label, entry.statuses) for entry in control.REGISTRY.values()]


#: Who may take an action, as reference.md words it, by the permissions method it asks: the
#: job's owner or the holder of the permission (permissions.py: delete is not the owner's).
WHO_MAY = {
    "can_stop": f"is its owner, or holds `{permissions.STOP.split('.')[1]}`",
    "can_manage": f"is its owner, or holds `{permissions.MANAGE.split('.')[1]}`",
    "can_delete": f"holds `{permissions.DELETE.split('.')[1]}`",
}


def action_names(cell: str) -> list[str]:
    """ "resume, low/normal priority" -> ["resume", "low priority", "normal priority"]."""
    names = []
    for part in cell.split(","):
        head, _, rest = part.strip().partition(" ")
        names.extend(f"{word} {rest}".strip() for word in head.split("/"))
    return names


def test_the_references_table_of_who_may_act_matches_the_registry():
    """reference.md, "Permissions": the rows that name actions (by their button's text) say who
    may take them, the same for every action of a row."""
    by_label = {entry.look.label.lower(): entry for entry in control.REGISTRY.values()}
    rows = table_after(DOCS / "reference.md", "| action | allowed when the user may see the job and |")
    covered: list[str] = []
    for names_cell, who in rows:
        names = action_names(names_cell)
        if not any(name in by_label for name in names):
            continue  # "view job, steps, logs, files"
        assert all(name in by_label for name in names), names_cell
        for name in names:
            assert who == WHO_MAY[by_label[name].permission], (name, who)
            covered.append(by_label[name].name)
    assert sorted(covered) == sorted(control.ACTIONS)
