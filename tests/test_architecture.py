"""The shape of the package, checked from its source (docs/architecture.md, "Layers"):

* no import cycles between the package's modules (imports under ``TYPE_CHECKING`` excepted:
  they never run);
* no imports inside functions, except of an optional dependency or a lazy re-export, marked
  with a comment that says so on the import's line (an import inside a function is how a cycle
  hides);
* each folder imports only from the layers below it: worker code never calls the web side, and
  the SQL records know nothing of what is done with them.

A module also depends on the ``__init__`` of its own folder (Python runs it first), so a
folder's ``__init__`` that imported the folder's modules would close a cycle; the package's own
``__init__`` (the public API) is the one exception, as it must import everything.

Read from the files with :mod:`ast`, not by importing them: importing any module runs the
package's ``__init__`` first, which imports everything in one fixed order and so would hide a
cycle that another order of first imports hits.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "flask_jobmonitor"
NAME = PACKAGE.name

#: The layers, lowest first. A module may import from its own layer and the ones before it in
#: ``ALLOWED``. Top-level modules not named here (``__init__``, ``extension``, ``cli`` and the
#: forwarding modules) wire everything together and may import anything.
LAYER_OF_TOP_LEVEL = {
    "errors": "base",
    "i18n": "base",
    "timeutil": "base",
    "keys": "base",
    "links": "base",
    "csvsafe": "base",
    "users": "base",
    "config": "state",
    "storage": "base",
    "tasks": "base",
    "permissions": "state",
    "state": "state",
    "events": "state",
}
ALLOWED: dict[str, set[str]] = {
    "base": {"base"},
    "records": {"base", "records"},
    # config reads the status names (records/status.py); permissions look jobs up
    "state": {"base", "records", "state"},
    "stats": {"base", "records", "state", "stats"},
    "jobs": {"base", "records", "state", "stats", "jobs"},
    "worker": {"base", "records", "state", "stats", "jobs", "worker"},
    "web": {"base", "records", "state", "stats", "jobs", "web"},
}
#: Words on an import line inside a function that say why it is there.
ALLOWED_INNER = ("optional dependency", "lazy re-export")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if "migrations" in parts:  # Alembic loads these files itself, by path
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join((NAME, *parts))] = path
    return found


MODULES = _modules()


def _layer(module: str) -> str | None:
    parts = module.split(".")[1:]
    if len(parts) >= 2:
        return parts[0]
    if not parts:
        return None
    if parts[0] in ALLOWED:  # a folder's __init__
        return parts[0]
    return LAYER_OF_TOP_LEVEL.get(parts[0])


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The package's modules an import statement loads (the module itself for a name in it)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name.split(".")[0] == NAME]
    if node.level:
        base = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        prefix = ".".join([*base, *([node.module] if node.module else [])])
    else:
        prefix = node.module or ""
    if prefix.split(".")[0] != NAME:
        return []
    found = []
    for alias in node.names:
        candidate = f"{prefix}.{alias.name}"
        found.append(candidate if candidate in MODULES else prefix)
    return found


def _imports(module: str, path: Path) -> tuple[set[str], list[tuple[int, str]]]:
    """(modules imported when the module runs, imports inside functions as (line, source))."""
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = path.read_text().splitlines()
    at_load: set[str] = set()
    inner: list[tuple[int, str]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                for branch in child.orelse:  # the ``else:`` of TYPE_CHECKING does run
                    visit(ast.Module(body=[branch], type_ignores=[]), in_function)
                continue
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if in_function:
                    if not any(mark in lines[child.lineno - 1] for mark in ALLOWED_INNER):
                        inner.append((child.lineno, ast.unparse(child)))
                else:
                    at_load.update(_targets(module, path, child))
                continue
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    parts = module.split(".")
    folders = [".".join(parts[:i]) for i in range(2, len(parts) + (path.name == "__init__.py" and 0))]
    at_load.update(folder for folder in folders if folder != module)  # run first: the folders' __init__
    at_load.discard(module)
    return {m for m in at_load if m in MODULES}, inner


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def strongconnect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node][0]):
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            strongconnect(node)
    return components


def test_the_check_sees_the_package():
    assert len(MODULES) > 40
    assert f"{NAME}.records.models" in GRAPH[f"{NAME}.records.transitions"][0]
    assert f"{NAME}.jobs.submit" in GRAPH[f"{NAME}.jobs.children"][0]


def test_no_import_cycles():
    assert _cycles() == []


def test_a_cycle_is_found(monkeypatch):
    # the check itself: records.models importing a job module would close a circle through it
    models, enqueue = f"{NAME}.records.models", f"{NAME}.jobs.enqueue"
    monkeypatch.setitem(GRAPH, models, (GRAPH[models][0] | {enqueue}, []))
    assert any(models in component and enqueue in component for component in _cycles())


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_imports_inside_functions(module):
    assert GRAPH[module][1] == [], f"{module} imports inside functions (move them up, or mark an optional dependency)"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_lower_layers(module):
    layer = _layer(module)
    if layer is None:
        pytest.skip("wires the package together")
    wrong = sorted(target for target in GRAPH[module][0] if (_layer(target) or "top") not in ALLOWED[layer])
    assert wrong == [], f"{module} ({layer}) imports {wrong}"
