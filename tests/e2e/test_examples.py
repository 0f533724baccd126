"""Every script of examples/ runs against a real server, as a user would run it."""

from __future__ import annotations

import asyncio
import pathlib
import sys

import aiohttp
import pytest

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


async def test_query_retrieve_example(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                      settings: orthanc_lite.config.Settings, tmp_path: pathlib.Path) -> None:
    """A second orthanc_lite plays the remote PACS; the example queries it and retrieves by C-MOVE and C-GET."""
    from tests.data.make_samples import make_instance

    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "pacs"), DicomAet="PACS")
    async with orthanc_lite.serve(remote_settings, host="127.0.0.1") as pacs, \
            aiohttp.ClientSession(base_url=pacs.url) as pacs_http:
        await pacs_http.put("/modalities/us", json=["ORTHANC", "127.0.0.1", server.dicom_port])
        await http.put("/modalities/pacs", json=["PACS", "127.0.0.1", pacs.dicom_port])
        for patient in ("EX1", "EX2"):
            await pacs_http.post("/instances", data=make_instance(patient_id=patient))
        code, out = await _run("examples/query_retrieve.py", "--url", server.url, "--modality", "pacs",
                               "--query", "PatientID=EX1")
        assert code == 0, out
        assert "1 answer(s)" in out and "retrieved 1 resource(s) from PACS to ORTHANC" in out
        code, out = await _run("examples/query_retrieve.py", "--url", server.url, "--modality", "pacs",
                               "--level", "Patient", "--query", "PatientID=EX2", "--method", "C-GET")
        assert code == 0, out
        async with http.get("/patients") as resp:
            assert len(await resp.json()) == 2


async def test_auto_forward_example(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                    tmp_path: pathlib.Path) -> None:
    """StableAge is 1 s in the test settings: the study becomes stable and is forwarded to storescp."""
    from tests.data.make_samples import make_series
    from tests.dimse.dimse_helpers import storescp

    async with storescp(tmp_path / "forwarded", aet="PACS") as dest:
        await http.put("/modalities/pacs", json=["PACS", "127.0.0.1", dest.port])
        for data in make_series(2, patient_id="FWD"):
            await http.post("/instances", data=data)
        code, out = await _run("examples/auto_forward.py", "--url", server.url, "--modality", "pacs",
                               "--since", "0", "--stop-after", "1")
        assert code == 0, out
        assert out.startswith("SENT") and "(2 instances) to pacs" in out, out
        assert len(dest.files()) == 2


@pytest.mark.orthanc
async def test_auto_forward_example_with_real_orthanc(tmp_path: pathlib.Path) -> None:
    from tests.data.make_samples import make_series
    from tests.dimse.dimse_helpers import storescp
    from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, spawn_orthanc

    if not ORTHANC_AVAILABLE:
        pytest.skip(SKIP_REASON)
    async with storescp(tmp_path / "forwarded", aet="PACS") as dest:
        orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc",
                                          {"StableAge": 1, "DicomModalities": {"pacs": ["PACS", "127.0.0.1", dest.port]}})
        try:
            async with aiohttp.ClientSession() as http:
                for data in make_series(3, patient_id="FWD"):
                    await http.post(orthanc.url + "/instances", data=data)
            code, out = await _run("examples/auto_forward.py", "--url", orthanc.url, "--modality", "pacs",
                                   "--since", "0", "--stop-after", "1")
            assert code == 0, out
            assert "(3 instances) to pacs" in out, out
            assert len(dest.files()) == 3
        finally:
            await asyncio.to_thread(orthanc.stop)
