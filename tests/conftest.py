"""Shared fixtures: a real server on ephemeral loopback ports, an HTTP client, the shared test data."""

from __future__ import annotations

import asyncio
import os
import pathlib
import sys
import threading
from typing import AsyncIterator

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings, load

ROOT = pathlib.Path(__file__).resolve().parent.parent
TESTDATA = (ROOT.parent / "shared" / "testdata" / "dicom").resolve()
if not TESTDATA.exists():  # a git worktree under /work/wt/NAME: the shared data sits one level higher
    TESTDATA = (ROOT.parent.parent / "shared" / "testdata" / "dicom").resolve()
ORTHANC_BIN = "/usr/sbin/Orthanc"


def testdata(*parts: str) -> pathlib.Path:
    return TESTDATA.joinpath(*parts)


testdata.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def all_testdata_files() -> list[pathlib.Path]:
    return sorted(p for p in TESTDATA.rglob("*") if p.is_file() and p.name != "DICOMDIR" and not p.name.endswith(".md"))


@pytest.fixture
def settings(tmp_path: pathlib.Path) -> Settings:
    return load(None).replace(
        StorageDirectory=str(tmp_path / "storage"),
        HttpPort=0,
        DicomPort=0,
        StableAge=1,
        RemoteAccessAllowed=True,
        AuthenticationEnabled=False,
    )


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[orthanc_lite.Server]:
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv:
        yield srv


@pytest.fixture
async def http(server: orthanc_lite.Server) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=server.url) as session:
        yield session


async def upload(http: aiohttp.ClientSession, path: os.PathLike[str] | str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


class BlockingCallOnLoop(AssertionError):
    """orthanc_lite called a blocking function on the event loop thread."""


def _guard(module: object, name: str) -> None:
    original = getattr(module, name)
    if getattr(original, "_loop_guard", False):
        return

    def guarded(*args: object, **kwargs: object) -> object:
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.startswith("orthanc_lite"):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass  # a worker thread: fine
            else:
                raise BlockingCallOnLoop(f"{caller} called {name} on the event loop thread")
        return original(*args, **kwargs)

    guarded._loop_guard = True  # type: ignore[attr-defined]
    setattr(module, name, guarded)


def pytest_configure(config: pytest.Config) -> None:
    """Protect the loop (Home Assistant's protect_loop idea): pydicom parsing, image decoding and outgoing
    associations called by orthanc_lite code on the loop thread raise instead of silently blocking it."""
    import PIL.Image
    import pydicom
    import pynetdicom

    _guard(pydicom, "dcmread")
    _guard(PIL.Image, "open")
    _guard(pynetdicom.AE, "associate")


@pytest.fixture(autouse=True)
def _no_leftover_threads() -> AsyncIterator[None]:
    """Every server a test starts must stop its pools (STYLE.md: no leaks across tests)."""
    before = {t.ident for t in threading.enumerate()}
    yield
    for t in threading.enumerate():
        if t.ident not in before and t.name.startswith(("cpu", "io", "dimse")) and t.is_alive():
            t.join(timeout=5)
            assert not t.is_alive(), f"thread {t.name} left running"


def pytest_report_header() -> str:
    return f"orthanc_lite {orthanc_lite.__version__}; real Orthanc: {'yes' if os.path.exists(ORTHANC_BIN) else 'no'}"


__all__ = ["testdata", "upload", "all_testdata_files", "asyncio"]
