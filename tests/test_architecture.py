"""The floors of docs/architecture.md hold: a module imports only from its own floor or below, never
another stage's private (underscore) name, and no import circle runs between modules or between units;
each module's file name is its own. Read from the source's import statements, function-local and
type-checking ones included, so a new upward arrow or circle fails here."""

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "hf_lpselect"

# docs/architecture.md, bottom to top
FLOORS = {
    "core": 0,
    "compat": 0,
    "errors": 0,
    "record": 1,
    "rundir": 1,
    "ingest": 1,
    "templates": 1,
    "lp": 1,
    "models": 1,
    "heads": 2,
    "padding_free": 2,
    "scoring": 3,
    "selection": 3,
    "hub": 4,
    "training": 5,
    "eval": 5,
    "space": 6,
    "cli": 7,
    "__init__": 7,
    "cards": 7,
}


def _unit(module: str) -> str:
    """``hf_lpselect.scoring.passes`` → ``scoring``: the floor's unit (a stage package or a top-level module)."""
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(absolute module imported, names taken from it, line) for every hf_lpselect import in ``path``."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if target.startswith("hf_lpselect"):
                found.append((target, [alias.name for alias in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names if alias.name.startswith("hf_lpselect")]
    return found


# the Space repo's own files ship as package data: its launcher app.py is a script a Space runs, not a module
SPACE_REPO = PACKAGE / "space" / "repo"


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(SPACE_REPO):
            continue
        yield ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts), path


def test_every_module_has_a_floor():
    assert {_unit(module) for module, _ in _modules()} <= set(FLOORS)


def test_no_module_imports_from_a_higher_floor():
    upward = []
    for module, path in _modules():
        here = FLOORS[_unit(module)]
        for target, names, line in _imports(path):
            if target == "hf_lpselect" and names == ["__version__"]:
                continue  # the version string, set before the package's lazy API is touched
            if FLOORS[_unit(target)] > here:
                upward.append(
                    f"{path.relative_to(PACKAGE)}:{line} imports {target} (floor {FLOORS[_unit(target)]} > {here})"
                )
    assert not upward, "\n".join(upward)


def test_the_bottom_layer_imports_no_stage():
    for module, path in _modules():
        if FLOORS[_unit(module)] == 0:
            assert all(FLOORS[_unit(target)] == 0 for target, _, _ in _imports(path)), module


def test_no_module_takes_another_units_private_name():
    taken = []
    for module, path in _modules():
        for target, names, line in _imports(path):
            private = [name for name in names if name.startswith("_") and not name.startswith("__")]
            if private and _unit(target) != _unit(module):
                taken.append(f"{path.relative_to(PACKAGE)}:{line} takes {', '.join(private)} from {target}")
    assert not taken, "\n".join(taken)


def _graph() -> dict[str, set[str]]:
    """module -> the hf_lpselect modules it imports (a name taken from a package counts as its submodule)."""
    modules = dict(_modules())
    graph = {}
    for module, path in modules.items():
        edges = set()
        for target, names, _ in _imports(path):
            if target == "hf_lpselect" and names == ["__version__"]:
                continue  # the version string, set before the package's lazy API is touched
            submodules = [f"{target}.{name}" for name in names if f"{target}.{name}" in modules]
            edges.update(submodules or [target])
        graph[module] = edges - {module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of ``graph``: its strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    """No two modules import each other, directly or round a longer loop, at module level or inside a
    function (a function-local import hides a circle from Python, not from a reader)."""
    graph = _graph()
    circles = _cycles(graph)
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(circle) for circle in circles)
    units: dict[str, set[str]] = {}
    for module, targets in graph.items():
        units.setdefault(_unit(module), set()).update(
            _unit(target) for target in targets if _unit(target) != _unit(module)
        )
    circles = _cycles(units)
    assert not circles, "circles between units of one floor:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_module_names_are_unique():
    """A module's file name says what it holds, once in the package; ``arguments.py`` is each stage's
    dataclasses of command-line arguments, as ``__init__.py`` is each package's front."""
    seen: dict[str, list[str]] = {}
    for module, path in _modules():
        if path.name not in ("__init__.py", "arguments.py"):
            seen.setdefault(path.name, []).append(module)
    assert not {name: where for name, where in seen.items() if len(where) > 1}
