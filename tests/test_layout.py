"""The package's layers, read from the source: no import cycle (library, add-on, scripts, benchmarks,
test helpers), imports flow downward, no module too large anywhere, bpy stays out of the library and
torch and sape_geom out of the add-on.

Imports are parsed with ``ast`` (module level and inside functions alike), so a lazy import inside a
function counts the same as one at the top: both are a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sape_geom"
ADDON = ROOT / "blender_addon" / "sape_geom_blender"
MAX_LINES = 450

#: Modules directly in sape_geom/ that everything may use; each is its own "layer" below.
BASE = {"config", "errors", "fileio"}
#: Layer -> the layers it may import (besides itself).
ALLOWED = {"nn": BASE, **{name: BASE for name in BASE}}
#: Layer -> layers it must never import.
FORBIDDEN = {
    "mesh": {"tasks", "app"},
    "curve": {"tasks", "app"},
    "viz": {"tasks", "app"},
    "tasks": {"app"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, package_only: bool = True) -> set[str]:
    """Absolute names of every module ``path`` imports (``from x import y`` counts ``x`` and ``x.y``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not (name + ".").startswith(base + "."):  # a module's own packages are already importing it
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    if package_only:
        return {m for m in found if m == "sape_geom" or m.startswith("sape_geom.")}
    return found


def package_modules(folder: Path = PACKAGE) -> dict[str, Path]:
    return {module_name(p): p for p in sorted(folder.rglob("*.py"))}


def dependency_graph(folder: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the modules of ``folder``'s package it imports (names that are not modules, e.g.
    functions, dropped): the library's, or the add-on's (``blender_addon.sape_geom_blender.*``)."""
    modules = package_modules(folder)
    return {
        name: {m for m in imported_modules(path, package_only=False) if m in modules and m != name}
        for name, path in modules.items()
    }


def layer(module: str) -> str:
    """``sape_geom.nn.model`` -> ``nn``; ``sape_geom.config`` -> ``config``; ``sape_geom`` -> ``sape_geom``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_function_level_and_relative_imports_are_seen():
    graph = dependency_graph()
    # the worker's registry imports its task modules at module level; they import the library's tasks inside
    # functions, and the protocol module imports none of them
    assert "sape_geom.app.worker.surface_tasks" in graph["sape_geom.app.worker.registry"]
    assert "sape_geom.tasks.occupancy" in graph["sape_geom.app.worker.surface_tasks"]
    assert not {m for m in graph["sape_geom.app.worker.protocol"] if m.startswith("sape_geom.tasks")}


def test_the_addon_graph_sees_lazy_and_relative_imports():
    graph = dependency_graph(ADDON)
    addon = "blender_addon.sape_geom_blender"
    assert f"{addon}.runner" in graph[f"{addon}.ui"]  # from . import ... at module level
    assert f"{addon}.paths" in graph[f"{addon}.results"]  # from .paths import ... inside a function


@pytest.mark.parametrize("folder", [PACKAGE, ADDON], ids=["sape_geom", "addon"])
def test_no_import_cycle(folder):
    assert find_cycle(dependency_graph(folder)) is None


#: Folders of scripts that import each other by bare name (the folder is on ``sys.path`` when they run).
SCRIPT_FOLDERS = [ROOT / "scripts", ROOT / "benchmarks", ROOT / "tests" / "addon"]


def script_graph(folder: Path) -> dict[str, set[str]]:
    """Script -> the scripts of the same folder it imports (``from stress_tools import run``)."""
    scripts = {p.stem: p for p in sorted(folder.glob("*.py"))}
    return {
        name: {m.split(".")[0] for m in imported_modules(path, package_only=False) if m.split(".")[0] in scripts}
        - {name}
        for name, path in scripts.items()
    }


def test_the_script_graph_sees_imports_by_bare_name():
    assert "stress_tools" in script_graph(ROOT / "benchmarks")["stress"]
    assert "blender_ui_tools" in script_graph(ROOT / "scripts")["blender_ui_check"]


@pytest.mark.parametrize("folder", SCRIPT_FOLDERS, ids=lambda f: f.name)
def test_no_import_cycle_among_scripts(folder):
    assert find_cycle(script_graph(folder)) is None


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    """``"a imports b"`` for every import that goes against ``ALLOWED`` or ``FORBIDDEN``."""
    wrong = []
    for module, deps in graph.items():
        own = layer(module)
        for dep in deps:
            other = layer(dep)
            if other == own or dep == "sape_geom":
                continue
            if (own in ALLOWED and other not in ALLOWED[own]) or other in FORBIDDEN.get(own, ()):
                wrong.append(f"{module} imports {dep}")
    return sorted(wrong)


def test_layering_violations_are_seen():
    graph = {
        "sape_geom.nn.model": {"sape_geom.mesh.io", "sape_geom.config"},
        "sape_geom.viz.render": {"sape_geom.tasks.occupancy"},
        "sape_geom.app.cli": {"sape_geom.tasks.x"},
    }
    assert layering_violations(graph) == [
        "sape_geom.nn.model imports sape_geom.mesh.io",
        "sape_geom.viz.render imports sape_geom.tasks.occupancy",
    ]


def test_imports_flow_downward():
    wrong = layering_violations(dependency_graph())
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(
    "folder", [PACKAGE, ADDON, *SCRIPT_FOLDERS, ROOT / "tests"], ids=lambda f: str(f.relative_to(ROOT))
)
def test_no_module_over_the_line_limit(folder):
    long = {
        str(p.relative_to(ROOT)): n
        for p in folder.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_library_never_imports_bpy():
    users = [
        name
        for name, path in package_modules().items()
        if any(m == "bpy" or m.startswith("bpy.") for m in imported_modules(path, package_only=False))
    ]
    assert not users


def test_the_addon_never_imports_torch_or_sape_geom():
    users = {}
    for path in ADDON.rglob("*.py"):
        bad = {m for m in imported_modules_addon(path) if m.split(".")[0] in ("torch", "sape_geom")}
        if bad:
            users[path.name] = sorted(bad)
    assert not users


def imported_modules_addon(path: Path) -> set[str]:
    """Top-level names of the modules an add-on file imports (relative imports stay inside the add-on)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found
