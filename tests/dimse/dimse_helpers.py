"""Helpers for the DIMSE tests: dcmtk tools as asyncio subprocesses, pynetdicom SCUs in worker threads,
a dcmtk storescp destination. The server under test runs in-process on the test's loop, so nothing here
blocks the loop: subprocesses are awaited, pynetdicom calls go through asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import shutil
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

DCMTK_TOOLS = ("echoscu", "storescu", "findscu", "movescu", "getscu", "storescp")
# Absolute paths: the venv's bin/ has pynetdicom's own echoscu/storescu/... with other options.
DCMTK = {name: shutil.which(name, path="/usr/bin:/usr/local/bin") for name in DCMTK_TOOLS}
DCMTK_MISSING = [name for name, path in DCMTK.items() if path is None]
requires_dcmtk = pytest.mark.skipif(bool(DCMTK_MISSING), reason=f"dcmtk tools not installed: {DCMTK_MISSING}")


@dataclass
class ToolResult:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_tool(name: str, *args: str | os.PathLike[str], timeout: float = 60.0,
                   env: dict[str, str] | None = None, cwd: str | None = None) -> ToolResult:
    """Run a dcmtk tool without blocking the loop; stdout and stderr together."""
    path = DCMTK[name]
    assert path is not None, f"{name} is not installed"
    proc = await asyncio.create_subprocess_exec(
        path, *map(str, args), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1", **(env or {})}, cwd=cwd)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return ToolResult(proc.returncode if proc.returncode is not None else -1, out.decode(errors="replace"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_for_echo(port: int, aet: str = "ORTHANC", deadline: float = 15.0) -> None:
    """Poll with echoscu until the SCP answers (no fixed sleep)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        result = await run_tool("echoscu", "-aec", aet, "127.0.0.1", str(port), timeout=5)
        if result.ok:
            return
        if loop.time() > end:
            raise TimeoutError(f"no C-ECHO answer on port {port}: {result.output}")
        await asyncio.sleep(0.05)  # polling interval


@dataclass
class Storescp:
    aet: str
    port: int
    folder: pathlib.Path

    def files(self) -> list[pathlib.Path]:
        return sorted(p for p in self.folder.rglob("*") if p.is_file())


@contextlib.asynccontextmanager
async def storescp(folder: pathlib.Path, aet: str = "DEST", options: tuple[str, ...] = ("+xa",)) -> AsyncIterator[Storescp]:
    """A dcmtk storescp accepting everything (or as `options` say) into `folder`, stopped on exit."""
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        port = free_port()
        proc = await asyncio.create_subprocess_exec(
            DCMTK["storescp"] or "storescp", "-aet", aet, "-od", str(folder), *options, str(port),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "TCP_NODELAY": "1"})
        try:
            await wait_for_echo(port, aet, deadline=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            continue
        try:
            yield Storescp(aet, port, folder)
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
        return
    raise RuntimeError("storescp did not start")


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking pynetdicom call off the loop (the server under test runs on it)."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def parse_statuses(output: str) -> list[str]:
    """The DIMSE statuses a dcmtk tool printed (-v), e.g. "Success", "Pending"."""
    out = []
    for line in output.splitlines():
        if "Received" in line and "Response" in line and "(" in line:
            out.append(line.rsplit("(", 1)[1].rstrip(")"))
    return out


def storescu_profile(files: list[pathlib.Path], path: pathlib.Path) -> list[str]:
    """A storescu --config-file proposing one presentation context per (SOP class, transfer syntax) of
    `files`, so that each file travels in its own syntax; returns the storescu arguments using it."""
    import pydicom

    pairs: dict[tuple[str, str], None] = {}
    for f in files:
        ds = pydicom.dcmread(f, stop_before_pixels=True, force=True)
        sop = ds.file_meta.get("MediaStorageSOPClassUID") or ds.SOPClassUID
        ts = ds.file_meta.get("TransferSyntaxUID") or "1.2.840.10008.1.2"  # no meta header: implicit LE
        pairs[(str(sop), str(ts))] = None
    syntaxes = sorted({ts for _, ts in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for i, ts in enumerate(syntaxes):
        lines += [f"[TS{i}]", f"TransferSyntax1 = {ts}"]
    lines += ["[[PresentationContexts]]", "[Contexts]"]
    for n, (sop, ts) in enumerate(pairs, start=1):
        lines.append(f"PresentationContext{n} = {sop}\\TS{syntaxes.index(ts)}")
    lines += ["[[Profiles]]", "[Exact]", "PresentationContexts = Contexts"]
    path.write_text("\n".join(lines) + "\n")
    return ["-xf", str(path), "Exact"]
