"""Configuration: Orthanc's configuration.json files -> one immutable `Settings`.

Owns the table of every option (`OPTIONS`: name, default, type check, help), the loader (JSON with
comments, `${ENV}` substitution, directories of files, defaults, validation -> `ConfigError`) and the
renderers of the documented `configuration.json` and `docs/configuration.md`, both generated from
`OPTIONS`. Imports nothing from the rest of orthanc_lite; nothing else reads the JSON or os.environ.
"""

from __future__ import annotations

from .docs import main, render_documented_configuration, render_markdown_documentation
from .kinds import ConfigError, JsonValue, Kind, OverwriteMode, PathArg, thaw
from .loader import check_startup_security, load, startup_refusal
from .option import DICOMWEB_OPTIONS, WORKLISTS_OPTIONS, Option
from .options import OPTION_GROUPS, OPTIONS
from .remotes import DicomWebServer, Modality, Peer
from .settings import Settings


__all__ = [
    "DICOMWEB_OPTIONS",
    "OPTIONS",
    "OPTION_GROUPS",
    "WORKLISTS_OPTIONS",
    "ConfigError",
    "DicomWebServer",
    "JsonValue",
    "Kind",
    "Modality",
    "Option",
    "OverwriteMode",
    "PathArg",
    "Peer",
    "Settings",
    "load",
    "main",
    "render_documented_configuration",
    "render_markdown_documentation",
    "thaw",
    "check_startup_security",
    "startup_refusal",
]
