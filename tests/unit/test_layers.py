"""The import direction of STYLE.md §2: entry layers -> services -> dicom/storage/index/model/errors."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "orthanc_lite"

# package -> modules it must never import (directly)
FORBIDDEN = {
    "services": ("aiohttp", "pynetdicom", "orthanc_lite.rest", "orthanc_lite.dimse", "orthanc_lite.dicomweb"),
    "index": ("pydicom", "pynetdicom", "aiohttp", "orthanc_lite.services", "orthanc_lite.rest"),
    "dicom": ("asyncio", "aiohttp", "aiosqlite", "pynetdicom", "orthanc_lite.services", "orthanc_lite.rest"),
    "storage": ("aiohttp", "pydicom", "pynetdicom", "orthanc_lite.services", "orthanc_lite.rest"),
}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    package = "orthanc_lite." + ".".join(path.relative_to(PACKAGE).parent.parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports(layer: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[layer]):
                offenders.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert not offenders, offenders


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_time_edges(path: pathlib.Path, modules: set[str]) -> set[str]:
    """The package modules a module imports anywhere: at the top, inside functions and under
    `if TYPE_CHECKING:` (a cycle hidden behind a lazy or typing-only import is still a cycle of the design);
    `from pkg import sub` counts sub, not pkg."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    edges: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{alias.name}" for alias in node.names} & modules
            edges |= subs or ({target} & modules)
        elif isinstance(node, ast.Import):
            edges |= {alias.name for alias in node.names} & modules
    edges.discard(name)
    return edges


def test_no_import_cycles() -> None:
    """No module imports itself back through others (STYLE.md: keep the graph free of cycles)."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: _import_time_edges(path, set(paths)) for name, path in paths.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, cycles
