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
