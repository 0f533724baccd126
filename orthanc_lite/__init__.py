"""orthanc_lite: an Orthanc-compatible DICOM server (REST, DICOM, DICOMweb) on one asyncio loop.

Public API: `async with orthanc_lite.serve(settings) as server:` runs a server until the block ends;
`orthanc_lite.load_config(path)` reads an Orthanc configuration file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .version import __version__

if TYPE_CHECKING:
    from .config import load as load_config
    from .server import Server, serve

__all__ = ["Server", "serve", "load_config", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import orthanc_lite.dicom.parse` (thread pools, tools) does not pull in aiohttp.
    if name in ("Server", "serve"):
        from . import server

        return getattr(server, name)
    if name == "load_config":
        from .config import load

        return load
    raise AttributeError(name)
