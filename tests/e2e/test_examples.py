"""Every script of examples/ runs against a real server, as a user would run it."""

from __future__ import annotations

import asyncio
import sys

import aiohttp

import orthanc_lite
from tests.conftest import ROOT, testdata


async def _run(*args: str, timeout: float = 30) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT, cwd=ROOT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def test_upload_folder_example(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    code, out = await _run("examples/upload_folder.py", str(testdata("Series")), "--url", server.url)
    assert code == 0, out
    assert "summary: Success=5" in out
    async with http.get("/instances") as resp:
        assert len(await resp.json()) == 5


async def test_follow_changes_example(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    with open(testdata("Series", "Lena-1.dcm"), "rb") as f:
        await http.post("/instances", data=f.read())
    code, out = await _run("examples/follow_changes.py", "--url", server.url, "--stop-after", "4")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert [line.split()[1] for line in lines] == ["NewInstance", "NewSeries", "NewStudy", "NewPatient"]
