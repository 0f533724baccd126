"""Logging setup: Orthanc's levels (WARNING default, --verbose INFO, --trace DEBUG)."""

from __future__ import annotations

import logging
import sys

_FORMAT = "%(levelname).1s%(asctime)s.%(msecs)03d %(name)s] %(message)s"


def setup(level: str = "default", trace_dicom: bool = False) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_orthanc_lite", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%m%d %H:%M:%S"))
        handler._orthanc_lite = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    set_level(level)
    logging.getLogger("pynetdicom").setLevel(logging.DEBUG if trace_dicom else logging.WARNING)


LEVELS = {"default": logging.WARNING, "verbose": logging.INFO, "trace": logging.DEBUG}


def set_level(level: str) -> None:
    logging.getLogger().setLevel(LEVELS[level])
    logging.getLogger("orthanc_lite").setLevel(LEVELS[level])


def current_level() -> str:
    lvl = logging.getLogger("orthanc_lite").getEffectiveLevel()
    return "trace" if lvl <= logging.DEBUG else "verbose" if lvl <= logging.INFO else "default"
