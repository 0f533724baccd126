"""Query/retrieve against dcmtk: dcmqrscp as the queried archive (C-FIND, C-MOVE to us and to a dcmtk
storescp, C-GET), driven through our REST API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import DCMTK, free_port, requires_dcmtk, run_tool, storescp, wait_for_echo

pytestmark = [requires_dcmtk, pytest.mark.skipif(DCMTK.get("storescp") is None or not os.path.exists(
    "/usr/bin/dcmqrscp"), reason="dcmqrscp not installed")]

STUDY = generate_uid()


@contextlib.asynccontextmanager
async def dcmqrscp(workdir: pathlib.Path, peers: dict[str, tuple[str, int]]) -> AsyncIterator[int]:
    """dcmqrscp (AET DCMQRSCP) with a read-write archive; `peers` = {AET: (host, port)} it may move to."""
    db = workdir / "db"
    db.mkdir(parents=True, exist_ok=True)
    port = free_port()
    hosts = "\n".join(f"h{i} = ({aet}, {host}, {p})" for i, (aet, (host, p)) in enumerate(peers.items()))
    (workdir / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        f"HostTable BEGIN\n{hosts}\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nDCMQRSCP {db} RW (200, 1024mb) ANY\nAETable END\n")
    proc = await asyncio.create_subprocess_exec("/usr/bin/dcmqrscp", "-c", str(workdir / "dcmqrscp.cfg"),
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        await wait_for_echo(port, "DCMQRSCP")
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()


async def test_query_move_get_with_dcmqrscp(tmp_path: pathlib.Path, settings: orthanc_lite.config.Settings) -> None:
    files = []
    for i, series in enumerate([generate_uid(), generate_uid()]):
        path = tmp_path / f"in{i}.dcm"
        path.write_bytes(make_instance(patient_id="DQR", study_uid=STUDY, series_uid=series, instance_number=i))
        files.append(path)
    async with orthanc_lite.serve(settings.replace(DicomAet="LITE"), host="127.0.0.1") as srv, \
            storescp(tmp_path / "dest", "STORESCP") as dest, \
            dcmqrscp(tmp_path / "qr", {"LITE": ("127.0.0.1", srv.dicom_port),
                                       "STORESCP": ("127.0.0.1", dest.port)}) as port, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        stored = await run_tool("storescu", "-aec", "DCMQRSCP", "127.0.0.1", str(port), *files)
        assert stored.ok, stored.output
        async with http.put("/modalities/qr", json=["DCMQRSCP", "127.0.0.1", port]) as r:
            assert r.status == 200
        async with http.post("/modalities/qr/query", json={"Level": "Series", "Query": {"StudyInstanceUID": STUDY}}) as r:
            assert r.status == 200, await r.text()
            query = await r.json()
        async with http.get(query["Path"] + "/answers?expand&simplify") as r:
            answers = await r.json()
        assert len(answers) == 2 and all(a["StudyInstanceUID"] == STUDY for a in answers)
        # C-MOVE of one answer to us
        async with http.post(query["Path"] + "/answers/0/retrieve", data="LITE") as r:
            assert r.status == 200, await r.text()
        async with http.get("/instances") as r:
            assert len(await r.json()) == 1
        # C-MOVE of the whole study to a third party (dcmtk's storescp)
        body = {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY}], "TargetAet": "STORESCP"}
        async with http.post("/modalities/qr/move", json=body) as r:
            assert r.status == 200, await r.text()
        assert len(dest.files()) == 2
        # C-GET of the study into us
        async with http.post("/modalities/qr/get", json={"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY}]}) as r:
            assert r.status == 200, await r.text()
        async with http.get("/instances") as r:
            assert len(await r.json()) == 2
        # a C-MOVE to an AET dcmqrscp does not know: its failure status becomes a clean error
        body["TargetAet"] = "UNKNOWN"
        async with http.post("/modalities/qr/move", json=body) as r:
            assert r.status in (422, 500)
            err = await r.json()
        assert err["OrthancStatus"] == 9 and "C-MOVE" in err["Details"]
