"""Optional benchmark sections contributed by other issues, found at run time.

A section is a module `bench/<name>.py` with `async def run(...) -> dict`. The harness calls it once both servers hold
the whole store, passing by name whichever of the `Context` fields its signature asks for (a parameter with a default
that the context lacks keeps its default; a required one the context lacks skips the section with a note).

For the table, a section may return `{figure: {"lite": {...}, "orthanc": {...} | None}}` where each side holds a
`p50_ms` (latency: lower is better) or an `instances_per_s` / `per_s` (throughput: higher is better); anything else is
only written to the JSON.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import time
import traceback
from dataclasses import dataclass
from typing import Any

# bench/find.py (issue 3: search), bench/dimse.py (issue 4: C-STORE/C-FIND), bench/dicomweb.py (issue 11),
# bench/pixels.py, bench/modify.py (issue 12: anonymization), bench/archive.py (issue 10: ZIP MB/s),
# bench/sending.py (issue 9: C-STORE SCU and peer stores), bench/cmove.py (issue 9: C-MOVE from real Orthanc),
# bench/throughput.py (issue 13: ingest against Orthanc and the libraries' floor in the same run)
OPTIONAL_SECTIONS = ("find", "dimse", "dicomweb", "pixels", "modify", "archive", "sending", "cmove", "throughput")


@dataclass(frozen=True)
class Context:
    base_url_lite: str
    base_url_orthanc: str | None
    dicom_port_lite: int
    dicom_port_orthanc: int | None
    aet_lite: str
    aet_orthanc: str | None
    host: str
    runs: int
    quick: bool
    workdir: str
    store_instances: int
    store_patients: int

    def as_kwargs(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        # Aliases, so that a section may use either spelling.
        values.update(lite_url=self.base_url_lite, orthanc_url=self.base_url_orthanc,
                      lite_dicom_port=self.dicom_port_lite, orthanc_dicom_port=self.dicom_port_orthanc,
                      lite_aet=self.aet_lite, orthanc_aet=self.aet_orthanc)
        return values


def available() -> list[str]:
    return [name for name in OPTIONAL_SECTIONS if importlib.util.find_spec(f"bench.{name}") is not None]


def _arguments(fn: Any, ctx: Context) -> tuple[dict[str, Any], list[str]]:
    values = ctx.as_kwargs()
    kwargs: dict[str, Any] = {}
    missing: list[str] = []
    for name, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if name in values:
            kwargs[name] = values[name]
        elif param.default is param.empty:
            missing.append(name)
    return kwargs, missing


async def run_section(name: str, ctx: Context) -> dict[str, Any]:
    """Import bench.<name> and await its run(); errors are reported, never raised."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(f"bench.{name}")
        fn = getattr(module, "run", None)
        if fn is None or not inspect.iscoroutinefunction(fn):
            return {"skipped": f"bench/{name}.py has no `async def run(...)`"}
        kwargs, missing = _arguments(fn, ctx)
        if missing:
            return {"skipped": f"run() needs {missing}, which the harness does not provide"}
        result = await fn(**kwargs)
    except Exception as exc:  # noqa: BLE001 - a broken section must not lose the other figures
        return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    if not isinstance(result, dict):
        result = {"result": result}
    result.setdefault("_seconds", round(time.perf_counter() - started, 1))
    return result
