"""Query/retrieve against real Orthanc 1.10.1: orthanc_lite queries it, moves and gets from it; and the same
REST calls made to real Orthanc (querying itself) give the same answers, field by field. Skipped, saying
why, when /usr/sbin/Orthanc is absent."""

from __future__ import annotations

import asyncio
import json
import pathlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import free_port
from tests.e2e.orthanc_peer import ServerProcess, requires_orthanc, spawn_orthanc

pytestmark = [pytest.mark.orthanc, requires_orthanc]

STUDY = generate_uid()
SERIES = [generate_uid(), generate_uid()]


@dataclass
class Peers:
    lite: orthanc_lite.Server
    lite_http: aiohttp.ClientSession
    orthanc: ServerProcess
    orthanc_http: aiohttp.ClientSession


@pytest.fixture
async def peers(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Peers]:
    orthanc_dicom = free_port()
    s = settings.replace(DicomAet="LITE", DicomModalities={"orthanc": ["ORTHANC", "127.0.0.1", orthanc_dicom]})
    async with orthanc_lite.serve(s, host="127.0.0.1") as lite:
        config = {"DicomPort": orthanc_dicom, "DicomModalities": {
            "lite": ["LITE", "127.0.0.1", lite.dicom_port], "self": ["ORTHANC", "127.0.0.1", orthanc_dicom]}}
        orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", config)
        try:
            async with aiohttp.ClientSession(base_url=lite.url) as lite_http, \
                    aiohttp.ClientSession(base_url=orthanc.url) as orthanc_http:
                if orthanc.dicom_port != orthanc_dicom:  # the peer had to pick other ports
                    await lite_http.put("/modalities/orthanc", json=["ORTHANC", "127.0.0.1", orthanc.dicom_port])
                    await orthanc_http.put("/modalities/self", json=["ORTHANC", "127.0.0.1", orthanc.dicom_port])
                for i, series in enumerate(SERIES * 2):
                    data = make_instance(patient_id="QRPAT", patient_name="Query^Retrieve", study_uid=STUDY,
                                         series_uid=series, instance_number=i + 1)
                    async with orthanc_http.post("/instances", data=data) as r:
                        assert r.status == 200
                yield Peers(lite, lite_http, orthanc, orthanc_http)
        finally:
            await asyncio.to_thread(orthanc.stop)


async def _call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    kwargs = {} if body is None else ({"data": body} if isinstance(body, str) else {"json": body})
    async with http.request(method, path, **kwargs) as r:
        text = await r.text()
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text


async def _both(p: Peers, method: str, lite_path: str, orthanc_path: str, body: Any = None) -> tuple[Any, Any]:
    """The same call to orthanc_lite (modality "orthanc") and to real Orthanc (modality "self")."""
    lite = await _call(p.lite_http, method, lite_path, body)
    real = await _call(p.orthanc_http, method, orthanc_path, body)
    assert lite[0] == real[0], (lite, real)
    return lite[1], real[1]


async def test_query_answers_match_real_orthanc(peers: Peers) -> None:
    body = {"Level": "Series", "Query": {"PatientID": "QRPAT", "SeriesDescription": "", "Modality": "",
                                         "SeriesDate": "", "InstanceNumber": "99"}}  # dropped at this level
    lite_q, real_q = await _both(peers, "POST", "/modalities/orthanc/query", "/modalities/self/query", body)
    assert "Path" in lite_q, lite_q
    for suffix in ("", "/level", "/query", "/query?simplify", "/answers", "/answers/0",
                   "/answers?expand", "/answers?expand&short", "/answers/1/content?simplify"):
        lite, real = await _both(peers, "GET", lite_q["Path"] + suffix, real_q["Path"] + suffix)
        if suffix.startswith("/answers?expand"):
            key = "0020,000e" if "short" in suffix else None
            lite, real = (sorted(x, key=lambda a: str(a.get(key) if key else a["0020,000e"])) for x in (lite, real))
        if suffix == "/answers/1/content?simplify":
            continue  # the order of answers is the remote's: compared through ?expand above
        assert lite == real, suffix
    # one level down, from a study answer
    lite_s, real_s = await _both(peers, "POST", "/modalities/orthanc/query", "/modalities/self/query",
                                 {"Level": "Study", "Query": {"StudyInstanceUID": STUDY}})
    lite_i, real_i = await _both(peers, "POST", lite_s["Path"] + "/answers/0/query-instances",
                                 real_s["Path"] + "/answers/0/query-instances", {"Query": {"InstanceNumber": ""}})
    lite, real = await _both(peers, "GET", lite_i["Path"] + "/answers?expand&simplify",
                             real_i["Path"] + "/answers?expand&simplify")
    assert sorted(lite, key=lambda a: a["SOPInstanceUID"]) == sorted(real, key=lambda a: a["SOPInstanceUID"])
    assert len(lite) == 4
    lite, real = await _both(peers, "GET", lite_i["Path"] + "/query", real_i["Path"] + "/query")
    assert lite == real
    # real Orthanc's C-FIND SCP refuses "*" in a date (0xC000): both SCUs answer 422 NetworkProtocol
    status, err = await _call(peers.lite_http, "POST", "/modalities/orthanc/query",
                              {"Level": "Study", "Query": {"StudyDate": "*"}})
    assert status == 422 and err["OrthancStatus"] == 9 and "0xC000" in err["Details"]
    status, _err = await _call(peers.orthanc_http, "POST", "/modalities/self/query",
                               {"Level": "Study", "Query": {"StudyDate": "*"}})
    assert status == 422
    # GenericNoWildcardInDates turns that "*" into universal matching, for both
    await peers.lite_http.put("/modalities/orthanc", json=["ORTHANC", "127.0.0.1", peers.orthanc.dicom_port,
                                                           "GenericNoWildcardInDates"])
    status, q = await _call(peers.lite_http, "POST", "/modalities/orthanc/query",
                            {"Level": "Study", "Query": {"StudyDate": "*"}})
    assert status == 200
    assert len((await _call(peers.lite_http, "GET", q["Path"] + "/answers"))[1]) == 1


async def test_move_from_real_orthanc(peers: Peers) -> None:
    lite_q, real_q = await _both(peers, "POST", "/modalities/orthanc/query", "/modalities/self/query",
                                 {"Level": "Study", "Query": {"PatientID": "QRPAT"}})
    # both drive a C-MOVE of the study from real Orthanc to orthanc_lite (AET LITE)
    lite_job, real_job = await _both(peers, "POST", lite_q["Path"] + "/answers/0/retrieve",
                                     real_q["Path"] + "/answers/0/retrieve", {"TargetAet": "LITE"})
    real_job["LocalAet"] = "LITE"  # who drives the move
    # TargetAet is in the Content since Orthanc 1.11 (DicomMoveScuJob::GetPublicContent), not in 1.10.1
    assert lite_job.pop("TargetAet") == "LITE" and "TargetAet" not in real_job
    assert lite_job == real_job
    status, instances = await _call(peers.lite_http, "GET", "/instances")
    assert status == 200 and len(instances) == 4
    # /modalities/{id}/move with an explicit resource, as a synchronous job: same Content
    body = {"Level": "Series", "Resources": [{"StudyInstanceUID": STUDY, "SeriesInstanceUID": SERIES[0]}],
            "TargetAet": "LITE"}
    status, job = await _call(peers.lite_http, "POST", "/modalities/orthanc/move", body)
    assert status == 200
    # 1.10.1 answers {} here; 1.13 answers the DicomMoveScu job's Content
    assert job == {"Description": "REST API", "LocalAet": "LITE", "RemoteAet": "ORTHANC", "TargetAet": "LITE",
                   "Query": [{"0008,0052": "SERIES", "0020,000d": STUDY, "0020,000e": SERIES[0]}]}


async def test_get_from_real_orthanc(peers: Peers) -> None:
    body = {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY}]}
    status, job = await _call(peers.lite_http, "POST", "/modalities/orthanc/get", body)
    assert status == 200, job
    assert job["RemoteAet"] == "ORTHANC" and job["Query"] == [{"0008,0052": "STUDY", "0020,000d": STUDY}]
    status, instances = await _call(peers.lite_http, "GET", "/instances")
    assert len(instances) == 4
    status, origin = await _call(peers.lite_http, "GET", f"/instances/{instances[0]}/metadata/Origin")
    assert origin == "DicomProtocol"


async def test_deprecated_find_matches_real_orthanc(peers: Peers) -> None:
    lite, real = await _both(peers, "POST", "/modalities/orthanc/find-patient", "/modalities/self/find-patient",
                             {"PatientName": "Query*"})
    assert lite == real and len(lite) == 1
    lite, real = await _both(peers, "POST", "/modalities/orthanc/find-study", "/modalities/self/find-study",
                             {"PatientID": "QRPAT"})
    assert lite == real and len(lite) == 1
    lite, real = await _both(peers, "POST", "/modalities/orthanc/find", "/modalities/self/find",
                             {"PatientID": "QRPAT"})
    for tree in (lite, real):
        tree[0]["Studies"][0]["Series"].sort(key=lambda s: s["SeriesInstanceUID"])
    assert lite == real


async def test_storage_commitment_with_real_orthanc(peers: Peers) -> None:
    status, instances = await _call(peers.orthanc_http, "GET", "/instances?expand")
    tags = [(i["MainDicomTags"]["SOPInstanceUID"]) for i in instances]
    body = {"DicomInstances": [["1.2.840.10008.5.1.4.1.1.2", uid] for uid in tags] +
            [{"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": "1.2.3.4"}]}
    status, ref = await _call(peers.lite_http, "POST", "/modalities/orthanc/storage-commitment", body)
    assert status == 200, ref
    deadline = time.monotonic() + 15
    while True:
        status, report = await _call(peers.lite_http, "GET", ref["Path"])
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)  # polling interval
    assert report["Status"] == "Failure" and report["RemoteAET"] == "ORTHANC"
    assert sorted(s["SOPInstanceUID"] for s in report["Success"]) == sorted(tags)
    assert report["Failures"] == [{"Description": "One or more of the elements in the Referenced SOP Instance Sequence was not available", "FailureReason": 274,
                                   "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "SOPInstanceUID": "1.2.3.4"}]


async def test_find_worklist_matches_real_orthanc(settings: Settings, tmp_path: pathlib.Path) -> None:
    """orthanc_lite serves worklists; it and real Orthanc both query it with /find-worklist: same answers."""
    from tests.dimse.test_find import _worklist

    folder = tmp_path / "wl"
    folder.mkdir()
    _worklist(folder, "a.wl", "Doe^Jane", "W1", "CT01", "20240105", "CT", "ACC1")
    _worklist(folder, "b.wl", "Roe^Rick", "W2", "MR01", "20240106", "MR", "ACC2")
    s = settings.replace(DicomAet="LITE", Worklists={"Enable": True, "Database": str(folder)},
                         DicomAlwaysAllowFindWorklist=True)
    async with orthanc_lite.serve(s, host="127.0.0.1") as lite:
        config = {"DicomModalities": {"wlm": ["LITE", "127.0.0.1", lite.dicom_port]}}
        orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", config)
        try:
            async with aiohttp.ClientSession(base_url=lite.url) as lite_http, \
                    aiohttp.ClientSession(base_url=orthanc.url) as orthanc_http:
                await lite_http.put("/modalities/wlm", json=["LITE", "127.0.0.1", lite.dicom_port])
                peers = Peers(lite, lite_http, orthanc, orthanc_http)
                for body in ({"Query": {"PatientName": "", "AccessionNumber": "", "ScheduledProcedureStepSequence":
                                        [{"Modality": "", "ScheduledStationAETitle": ""}]}},
                             {"Query": {"PatientID": "W2", "ScheduledProcedureStepSequence": [{"Modality": ""}]},
                              "Short": True},
                             {"PatientName": "Doe*"}):
                    lite_answers, real_answers = await _both(peers, "POST", "/modalities/wlm/find-worklist",
                                                             "/modalities/wlm/find-worklist", body)
                    key = (lambda a: json.dumps(a, sort_keys=True))
                    assert sorted(lite_answers, key=key) == sorted(real_answers, key=key), body
                    assert lite_answers
        finally:
            await asyncio.to_thread(orthanc.stop)


async def _report(http: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        status, report = await _call(http, "GET", path)
        assert status == 200, report
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.1)  # polling interval


async def test_storage_commitment_reports_match_real_orthanc(peers: Peers) -> None:
    """Both ask real Orthanc's storage commitment SCP about the same instances: same reports, same errors."""
    status, instances = await _call(peers.orthanc_http, "GET", "/instances?expand")
    uids = sorted(i["MainDicomTags"]["SOPInstanceUID"] for i in instances)
    for refs in ([["1.2.840.10008.5.1.4.1.1.2", uid] for uid in uids],
                 [["1.2.840.10008.5.1.4.1.1.2", uids[0]], ["1.2.840.10008.5.1.4.1.1.4", uids[1]],
                  ["1.2.840.10008.5.1.4.1.1.2", "1.2.3"]]):
        lite_ref, real_ref = await _both(peers, "POST", "/modalities/orthanc/storage-commitment",
                                         "/modalities/self/storage-commitment", {"DicomInstances": refs})
        lite = await _report(peers.lite_http, lite_ref["Path"])
        real = await _report(peers.orthanc_http, real_ref["Path"])
        assert lite == real
    for body in ({}, {"DicomInstances": "x"}, {"DicomInstances": [["only-one"]]}, {"Resources": [3]}, []):
        lite, real = await _both(peers, "POST", "/modalities/orthanc/storage-commitment",
                                 "/modalities/self/storage-commitment", body)
        assert lite["OrthancStatus"] == real["OrthancStatus"], body
    lite, real = await _both(peers, "GET", "/storage-commitment/1.2.3", "/storage-commitment/1.2.3")
    assert (lite["HttpStatus"], lite["OrthancStatus"]) == (real["HttpStatus"], real["OrthancStatus"])


async def test_query_errors_match_real_orthanc(peers: Peers) -> None:
    lite_q, real_q = await _both(peers, "POST", "/modalities/orthanc/query", "/modalities/self/query",
                                 {"Level": "Patient", "Query": {"PatientID": "QRPAT"}})
    for suffix in ("/answers/5/content", "/answers/5", "/answers/0/query-series"):
        method = "POST" if suffix.endswith("query-series") else "GET"
        lite, real = await _both(peers, method, lite_q["Path"] + suffix, real_q["Path"] + suffix,
                                 {} if method == "POST" else None)
        if isinstance(real, dict) and "OrthancStatus" in real:
            assert lite["OrthancStatus"] == real["OrthancStatus"], suffix
    for path in ("/queries/nope", "/queries/nope/answers"):
        lite, real = await _both(peers, "GET", path, path)
        assert lite["OrthancStatus"] == real["OrthancStatus"]
    for body in ({"Query": {}}, {"Level": "Study", "Normalize": "yes"}, {"Level": "Study", "Query": []},
                 {"Level": "Nope"}, []):
        lite, real = await _both(peers, "POST", "/modalities/orthanc/query", "/modalities/self/query", body)
        assert lite["OrthancStatus"] == real["OrthancStatus"], body
    for body in ({"Level": "Study"}, {"Resources": []}, {"Level": "Study", "Resources": "x"}):
        lite, real = await _both(peers, "POST", "/modalities/orthanc/move", "/modalities/self/move", body)
        assert lite["OrthancStatus"] == real["OrthancStatus"], body
