"""The package's layout: packages by concept, imports pointing one way, no cycles.

Every ``import`` in ``src/phycrnet`` (at module level or inside a function) is an edge of
the graph; a module may import only from its own package or from packages listed before
its own in :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import phycrnet

PACKAGE = Path(phycrnet.__file__).resolve().parent
#: Packages from the bottom up: each may import only those before it (and itself).
LAYERS = [
    {"_version", "errors", "options"},
    {"spec"},
    {"discretisation", "io"},
    {"analysis"},
    {"physics"},
    {"models", "losses"},
    {"training"},
    {"reference"},
    {"methods"},
    {"studies"},
    {"cli", "__init__", "__main__"},
]


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts): path for path in PACKAGE.rglob("*.py")}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n == "phycrnet" or n.startswith("phycrnet.")}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(package: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if package in layer)


def test_every_package_has_a_layer():
    assert {_package(m) for m in _modules()} <= set().union(*LAYERS)


def test_no_module_imports_from_a_higher_layer():
    modules = _modules()
    upward = []
    for module, path in modules.items():
        own = _layer(_package(module))
        for target in _imports(path):
            if target == "phycrnet" and _package(module) in {"__init__", "__main__"}:
                continue
            target_layer = _layer(_package(target))
            if target_layer > own:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_there_is_no_import_cycle():
    modules = _modules()
    graph = {m: {t for t in _imports(p) if t in modules} for m, p in modules.items()}
    # ``from phycrnet.x import name`` also names ``phycrnet.x.name``; keep module targets only
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in graph[node]:
            if target.endswith(".__init__"):
                continue
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, target]))
            if target not in state:
                visit(target, [*path, node])
        state[node] = 2

    for module in graph:
        if module not in state and not module.endswith("__init__"):
            visit(module, [])


def test_modules_and_functions_stay_small():
    """No class over 300 lines and no function over 60 lines."""
    too_long = []
    for module, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            limit = 300 if isinstance(node, ast.ClassDef) else 60 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None
            if limit and node.end_lineno - node.lineno + 1 > limit:
                too_long.append(f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not too_long, too_long
