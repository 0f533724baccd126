"""Query/retrieve SCU through the REST API against a second orthanc_lite (the "remote" archive, in process):
/modalities/{id}/query and /queries/..., retrieves by C-MOVE and C-GET, /modalities/{id}/move and /get,
deprecated find routes, storage commitment SCU, and clean failures (refused, unreachable, silent peer)."""

from __future__ import annotations

import asyncio
import pathlib
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from pydicom.uid import generate_uid

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance

STUDY_A = generate_uid()
STUDY_B = generate_uid()
SERIES_A1 = generate_uid()
SERIES_A2 = generate_uid()


@dataclass
class Pair:
    local: aiohttp.ClientSession     # the server under test (AET ORTHANC), modality "remote" -> the archive
    remote: aiohttp.ClientSession    # the archive (AET REMOTE), modality "lite" -> the server under test
    local_server: orthanc_lite.Server
    remote_server: orthanc_lite.Server


async def _put(http: aiohttp.ClientSession, path: str, body: object) -> None:
    async with http.put(path, json=body) as r:
        assert r.status == 200, await r.text()


async def _post(http: aiohttp.ClientSession, path: str, body: object = None, status: int = 200) -> object:
    kwargs = {"json": body} if not isinstance(body, (str, bytes)) else {"data": body}
    async with http.post(path, **kwargs) as r:
        text = await r.text()
        assert r.status == status, text
        return await r.json(content_type=None) if text else None


async def _get(http: aiohttp.ClientSession, path: str, status: int = 200) -> object:
    async with http.get(path) as r:
        assert r.status == status, await r.text()
        if r.content_type == "application/json":
            return await r.json()
        return await r.text()


@pytest.fixture
async def pair(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Pair]:
    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "remote"), DicomAet="REMOTE")
    async with orthanc_lite.serve(settings, host="127.0.0.1") as local_srv, \
            orthanc_lite.serve(remote_settings, host="127.0.0.1") as remote_srv, \
            aiohttp.ClientSession(base_url=local_srv.url) as local, \
            aiohttp.ClientSession(base_url=remote_srv.url) as remote:
        await _put(local, "/modalities/remote", ["REMOTE", "127.0.0.1", remote_srv.dicom_port])
        await _put(remote, "/modalities/lite", ["ORTHANC", "127.0.0.1", local_srv.dicom_port])
        for series, study, number, patient in ((SERIES_A1, STUDY_A, 1, "PA"), (SERIES_A1, STUDY_A, 2, "PA"),
                                               (SERIES_A2, STUDY_A, 1, "PA"), (None, STUDY_B, 1, "PB")):
            data = make_instance(patient_id=patient, patient_name=f"Name^{patient}", study_uid=study,
                                 series_uid=series, instance_number=number)
            async with remote.post("/instances", data=data) as r:
                assert r.status == 200
        yield Pair(local, remote, local_srv, remote_srv)


async def test_query_and_browse_answers(pair: Pair) -> None:
    http = pair.local
    assert await _get(http, "/queries") == []
    q = await _post(http, "/modalities/remote/query", {"Level": "Study", "Query": {"PatientID": "PA"}})
    assert isinstance(q, dict) and q["Path"] == f"/queries/{q['ID']}"
    base = q["Path"]
    assert await _get(http, "/queries") == [q["ID"]]
    assert await _get(http, base) == ["answers", "level", "modality", "query", "retrieve"]
    assert await _get(http, base + "/level") == "Study"
    assert await _get(http, base + "/modality") == "remote"
    assert await _get(http, base + "/query?simplify") == {"PatientID": "PA"}
    assert await _get(http, base + "/query?short") == {"0010,0020": "PA"}
    assert await _get(http, base + "/answers") == ["0"]
    content = await _get(http, base + "/answers/0/content?simplify")
    assert content["StudyInstanceUID"] == STUDY_A
    assert content["QueryRetrieveLevel"] == "STUDY"
    assert content["PatientID"] == "PA"
    full = await _get(http, base + "/answers/0/content")
    assert full["0020,000d"] == {"Name": "StudyInstanceUID", "Type": "String", "Value": STUDY_A}
    expanded = await _get(http, base + "/answers?expand&simplify")
    assert expanded == [content]
    assert await _get(http, base + "/answers/0") == ["content", "retrieve", "query-series", "query-instances"]
    await _get(http, base + "/answers/1/content", status=400)
    # a sub-query one level down, restricted to the answer
    sub = await _post(http, base + "/answers/0/query-series", {"Query": {"SeriesDescription": ""}})
    series = await _get(http, sub["Path"] + "/answers?expand&simplify")
    assert sorted(s["SeriesInstanceUID"] for s in series) == sorted([SERIES_A1, SERIES_A2])
    assert all(s["StudyInstanceUID"] == STUDY_A for s in series)
    assert await _get(http, sub["Path"] + "/level") == "Series"
    await _post(http, base + "/answers/0/query-studies", {}, status=404)  # not below a study answer
    async with http.delete(base) as r:
        assert r.status == 200
    assert await _get(http, "/queries") == [sub["ID"]]
    await _get(http, base + "/level", status=404)


async def test_query_bad_requests(pair: Pair) -> None:
    http = pair.local
    await _post(http, "/modalities/remote/query", {"Query": {}}, status=400)
    await _post(http, "/modalities/remote/query", {"Level": "Study", "Normalize": 1}, status=400)
    await _post(http, "/modalities/remote/query", {"Level": "Study", "Query": {"NotATag": "x"}}, status=400)
    err = await _post(http, "/modalities/nope/query", {"Level": "Study"}, status=404)
    assert err["OrthancError"] == "Accessing an inexistent item"


async def test_retrieve_answer_by_cmove(pair: Pair) -> None:
    http = pair.local
    q = await _post(http, "/modalities/remote/query", {"Level": "Series", "Query": {"StudyInstanceUID": STUDY_A}})
    answers = await _get(http, q["Path"] + "/answers?expand&simplify")
    index = next(i for i, a in enumerate(answers) if a["SeriesInstanceUID"] == SERIES_A1)
    job = await _post(http, f"{q['Path']}/answers/{index}/retrieve", "ORTHANC")  # a bare AET body
    assert job["TargetAet"] == "ORTHANC" and job["RemoteAet"] == "REMOTE" and job["LocalAet"] == "ORTHANC"
    assert job["Query"] == [{"0008,0052": "SERIES", "0010,0020": "PA", "0020,000d": STUDY_A,
                             "0020,000e": SERIES_A1, "0008,0050": "ACCPA"}]
    assert len(await _get(http, "/instances")) == 2
    # the whole query, in the human format
    job = await _post(http, q["Path"] + "/retrieve", {"TargetAet": "ORTHANC", "Simplify": True})
    assert {a["SeriesInstanceUID"] for a in job["Query"]} == {SERIES_A1, SERIES_A2}
    assert len(await _get(http, "/instances")) == 3


async def test_retrieve_answer_by_cget(pair: Pair) -> None:
    http = pair.local
    q = await _post(http, "/modalities/remote/query", {"Level": "Study", "Query": {"PatientID": "PB"}})
    job = await _post(http, q["Path"] + "/answers/0/retrieve", {"RetrieveMethod": "C-GET"})
    assert "TargetAet" not in job
    instances = await _get(http, "/instances")
    assert len(instances) == 1
    assert await _get(http, f"/instances/{instances[0]}/metadata/Origin") == "DicomProtocol"
    assert await _get(http, f"/instances/{instances[0]}/metadata/RemoteAET") == "REMOTE"
    # no method in the body: the modality's RetrieveMethod decides
    await _put(http, "/modalities/remote", {"AET": "REMOTE", "Host": "127.0.0.1", "RetrieveMethod": "C-GET",
                                            "Port": pair.remote_server.dicom_port})
    q = await _post(http, "/modalities/remote/query", {"Level": "Study", "Query": {"PatientID": "PA"}})
    job = await _post(http, q["Path"] + "/answers/0/retrieve", {})
    assert "TargetAet" not in job  # a C-GET
    assert len(await _get(http, "/instances")) == 4
    await _post(http, q["Path"] + "/answers/0/retrieve", {"RetrieveMethod": "C-FOO"}, status=400)


async def test_default_retrieve_method(settings: Settings, tmp_path: pathlib.Path) -> None:
    """A modality whose RetrieveMethod is SystemDefault follows DicomDefaultRetrieveMethod."""
    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "remote"), DicomAet="REMOTE")
    async with orthanc_lite.serve(settings.replace(DicomDefaultRetrieveMethod="C-GET"), host="127.0.0.1") as srv, \
            orthanc_lite.serve(remote_settings, host="127.0.0.1") as remote_srv, \
            aiohttp.ClientSession(base_url=srv.url) as http, \
            aiohttp.ClientSession(base_url=remote_srv.url) as remote:
        await _put(http, "/modalities/remote", ["REMOTE", "127.0.0.1", remote_srv.dicom_port])
        await _put(remote, "/modalities/lite", ["ORTHANC", "127.0.0.1", srv.dicom_port])
        async with remote.post("/instances", data=make_instance(patient_id="DEF")) as r:
            assert r.status == 200
        q = await _post(http, "/modalities/remote/query", {"Level": "Patient", "Query": {"PatientID": "DEF"}})
        job = await _post(http, q["Path"] + "/retrieve")  # no body at all
        assert "TargetAet" not in job and job["Query"] == [{"0008,0052": "PATIENT", "0010,0020": "DEF"}]
        assert len(await _get(http, "/instances")) == 1


async def test_modality_move_and_get(pair: Pair) -> None:
    http = pair.local
    job = await _post(http, "/modalities/remote/move", {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_B}],
                                                         "TargetAet": "ORTHANC"})
    assert job["Query"] == [{"0008,0052": "STUDY", "0020,000d": STUDY_B}]
    assert job["Description"] == "REST API"
    assert len(await _get(http, "/studies")) == 1
    job = await _post(http, "/modalities/remote/get", {"Level": "Series",
                                                       "Resources": [{"StudyInstanceUID": STUDY_A,
                                                                      "SeriesInstanceUID": SERIES_A2}]})
    assert job["RemoteAet"] == "REMOTE"
    assert len(await _get(http, "/series")) == 2
    await _post(http, "/modalities/remote/move", {"Level": "Study"}, status=400)
    # the remote refuses a move that matches nothing: a clean error with its DIMSE status (500: a failed job
    # answers its ErrorCode's status; only the direct C-FIND keeps 422)
    err = await _post(http, "/modalities/remote/move", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2"}]},
                      status=500)
    assert err["OrthancStatus"] == 9 and "C-MOVE" in err["Details"]
    # Permissive: the failing resource is skipped, the others are moved
    job = await _post(http, "/modalities/remote/move", {"Level": "Series", "Permissive": True, "TargetAet": "ORTHANC",
                                                         "Resources": [{"StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3"},
                                                                       {"StudyInstanceUID": STUDY_A, "SeriesInstanceUID": SERIES_A1}]})
    assert len(job["Query"]) == 2
    assert len(await _get(http, "/series")) == 3


async def test_deprecated_find_routes(pair: Pair) -> None:
    http = pair.local
    patients = await _post(http, "/modalities/remote/find-patient", {"PatientName": "Name^P*"})
    assert sorted(p["PatientID"] for p in patients) == ["PA", "PB"]
    assert all(p["QueryRetrieveLevel"] == "PATIENT" for p in patients)
    studies = await _post(http, "/modalities/remote/find-study", {"PatientID": "PAX*"})
    assert studies == []
    async with http.post("/modalities/remote/find-study", json={"PatientID": "PA"}) as r:
        assert r.status == 400  # Orthanc refuses identifiers of 2 characters or less
    tree = await _post(http, "/modalities/remote/find", {"PatientID": "PA"})
    assert len(tree) == 1 and len(tree[0]["Studies"]) == 1
    assert len(tree[0]["Studies"][0]["Series"]) == 2


async def test_query_retrieve_size(settings: Settings, tmp_path: pathlib.Path) -> None:
    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "remote"), DicomAet="REMOTE")
    async with orthanc_lite.serve(settings.replace(QueryRetrieveSize=2), host="127.0.0.1") as srv, \
            orthanc_lite.serve(remote_settings, host="127.0.0.1") as remote_srv, \
            aiohttp.ClientSession(base_url=srv.url) as http, \
            aiohttp.ClientSession(base_url=remote_srv.url) as remote:
        await _put(http, "/modalities/remote", ["REMOTE", "127.0.0.1", remote_srv.dicom_port])
        await _put(remote, "/modalities/lite", ["ORTHANC", "127.0.0.1", srv.dicom_port])
        ids = [(await _post(http, "/modalities/remote/query", {"Level": "Patient"}))["ID"] for _ in range(3)]
        assert await _get(http, "/queries") == sorted(ids[1:])


async def test_storage_commitment_scu(pair: Pair) -> None:
    http = pair.local
    data = make_instance(patient_id="SC")
    async with http.post("/instances", data=data) as r:
        stored = await r.json()
    # the instance is not in the remote archive yet: the remote reports a failure for it
    ref = await _post(http, "/modalities/remote/storage-commitment", {"Resources": [stored["ParentStudy"]]})
    assert ref["Path"] == f"/storage-commitment/{ref['ID']}"
    report = await _poll_report(http, ref["Path"])
    assert report["Status"] == "Failure" and report["RemoteAET"] == "REMOTE"
    assert report["Failures"][0]["FailureReason"] == 0x0112
    assert report["Failures"][0]["Description"].startswith("One or more of the elements")
    await _post(http, ref["Path"] + "/remove", {}, status=400)
    # store it there, then a commitment succeeds and allows removing the local copy
    async with pair.remote.post("/instances", data=data) as r:
        assert r.status == 200
    tags = await _get(http, f"/instances/{stored['ID']}/simplified-tags")
    ref = await _post(http, "/modalities/remote/storage-commitment",
                      {"DicomInstances": [[tags["SOPClassUID"], tags["SOPInstanceUID"]]]})
    report = await _poll_report(http, ref["Path"])
    assert report == {"RemoteAET": "REMOTE", "Status": "Success", "Failures": [],
                      "Success": [{"SOPClassUID": tags["SOPClassUID"], "SOPInstanceUID": tags["SOPInstanceUID"]}]}
    assert await _post(http, ref["Path"] + "/remove", {}) == {}
    assert await _get(http, "/instances") == []
    await _get(http, "/storage-commitment/1.2.3", status=404)
    await _post(http, "/modalities/remote/storage-commitment", {}, status=400)


async def _poll_report(http: aiohttp.ClientSession, path: str) -> dict:
    deadline = time.monotonic() + 10
    while True:
        report = await _get(http, path)
        if report["Status"] != "Pending" or time.monotonic() > deadline:
            return report
        await asyncio.sleep(0.05)  # polling interval


# -- peers that fail ---------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_refused_association_is_a_clean_error(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    await _put(http, "/modalities/down", ["DOWN", "127.0.0.1", _closed_port()])
    started = time.monotonic()
    err = await _post(http, "/modalities/down/query", {"Level": "Study"}, status=500)
    assert err["OrthancError"] == "Error in the network protocol" and "DOWN" in err["Details"]
    err = await _post(http, "/modalities/down/move", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1"}]},
                      status=500)
    assert err["OrthancStatus"] == 9
    assert time.monotonic() - started < 10


async def test_silent_peer_times_out(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """A peer that accepts the TCP connection and never answers: the association fails after Timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    try:
        await _put(http, "/modalities/silent", {"AET": "SILENT", "Host": "127.0.0.1",
                                                "Port": listener.getsockname()[1], "Timeout": 1})
        started = time.monotonic()
        err = await _post(http, "/modalities/silent/query", {"Level": "Study"}, status=500)
        assert err["OrthancStatus"] == 9
        err = await _post(http, "/modalities/silent/get", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1"}],
                                                           "Timeout": 1}, status=500)
        assert err["OrthancStatus"] == 9
        assert time.monotonic() - started < 15
    finally:
        listener.close()


async def test_unreachable_host_is_a_clean_error(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    # 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never routed, the connection attempt can only time out or fail
    await _put(http, "/modalities/far", {"AET": "FAR", "Host": "192.0.2.1", "Port": 104, "Timeout": 1})
    started = time.monotonic()
    err = await _post(http, "/modalities/far/query", {"Level": "Patient"}, status=500)
    assert err["OrthancStatus"] == 9
    assert time.monotonic() - started < 10


async def test_asynchronous_retrieve_is_a_job(pair: Pair) -> None:
    http = pair.local
    q = await _post(http, "/modalities/remote/query", {"Level": "Study", "Query": {"PatientID": "PA"}})
    ref = await _post(http, q["Path"] + "/retrieve", {"TargetAet": "ORTHANC", "Asynchronous": True, "Priority": 3})
    assert ref["Path"] == f"/jobs/{ref['ID']}"
    job = await _poll_job(http, ref["Path"])
    assert job["State"] == "Success" and job["Type"] == "DicomMoveScu" and job["Priority"] == 3
    assert job["Progress"] == 100
    assert job["Content"]["TargetAet"] == "ORTHANC" and job["Content"]["RemoteAet"] == "REMOTE"
    assert len(await _get(http, "/instances")) == 3
    ref = await _post(http, "/modalities/remote/get", {"Level": "Study", "Resources": [{"StudyInstanceUID": STUDY_B}],
                                                       "Synchronous": False})
    job = await _poll_job(http, ref["Path"])
    assert job["State"] == "Success" and job["Type"] == "DicomGetScu"
    assert len(await _get(http, "/instances")) == 4
    # a failing asynchronous retrieve ends in Failure with Orthanc's error fields
    await _put(http, "/modalities/down", ["DOWN", "127.0.0.1", _closed_port()])
    ref = await _post(http, "/modalities/down/move", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1"}],
                                                      "Asynchronous": True})
    job = await _poll_job(http, ref["Path"])
    assert job["State"] == "Failure" and job["ErrorCode"] == 9
    assert "DOWN" in job["ErrorDetails"]


async def _poll_job(http: aiohttp.ClientSession, path: str) -> dict:
    deadline = time.monotonic() + 15
    while True:
        job = await _get(http, path)
        if job["State"] in ("Success", "Failure") or time.monotonic() > deadline:
            return job
        await asyncio.sleep(0.05)  # polling interval


async def test_find_worklist(settings: Settings, tmp_path: pathlib.Path) -> None:
    """/modalities/{id}/find-worklist against a second orthanc_lite serving a worklist folder."""
    from tests.dimse.test_find import _worklist

    folder = tmp_path / "wl"
    folder.mkdir()
    _worklist(folder, "a.wl", "Doe^Jane", "W1", "CT01", "20240105", "CT", "ACC1")
    _worklist(folder, "b.wl", "Roe^Rick", "W2", "MR01", "20240106", "MR", "ACC2")
    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "remote"), DicomAet="WLM",
                                       Worklists={"Enable": True, "Database": str(folder)},
                                       DicomAlwaysAllowFindWorklist=True)
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, \
            orthanc_lite.serve(remote_settings, host="127.0.0.1") as wlm, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        await _put(http, "/modalities/wlm", ["WLM", "127.0.0.1", wlm.dicom_port])
        query = {"PatientName": "", "AccessionNumber": "",
                 "ScheduledProcedureStepSequence": [{"Modality": "MR", "ScheduledStationAETitle": ""}]}
        answers = await _post(http, "/modalities/wlm/find-worklist", {"Query": query})
        assert len(answers) == 1
        assert answers[0]["PatientName"] == "Roe^Rick" and answers[0]["AccessionNumber"] == "ACC2"
        assert answers[0]["ScheduledProcedureStepSequence"][0]["ScheduledStationAETitle"] == "MR01"
        short = await _post(http, "/modalities/wlm/find-worklist", {"Query": query, "Short": True})
        assert short[0]["0010,0010"] == "Roe^Rick"
        legacy = await _post(http, "/modalities/wlm/find-worklist", {"PatientName": "Doe*"})  # Orthanc <= 1.9.4
        assert [a["PatientName"] for a in legacy] == ["Doe^Jane"]
        await _post(http, "/modalities/wlm/find-worklist", {"Query": {"NoSuchTag": ""}}, status=400)


async def test_get_of_a_missing_resource_succeeds_empty(pair: Pair) -> None:
    """As Orthanc's C-GET SCU, the final failure status of the remote does not fail the job."""
    job = await _post(pair.local, "/modalities/remote/get", {"Level": "Study", "Resources": [{"StudyInstanceUID": "1.2"}]})
    assert job["Query"] == [{"0008,0052": "STUDY", "0020,000d": "1.2"}]
    assert await _get(pair.local, "/instances") == []


async def test_storage_commitment_of_unknown_resource(pair: Pair) -> None:
    err = await _post(pair.local, "/modalities/remote/storage-commitment", {"Resources": ["nope"]}, status=404)
    assert err["OrthancStatus"] == 17


async def test_retrieve_jobs_are_saved(settings: Settings, tmp_path: pathlib.Path) -> None:
    """SaveJobs: a finished DicomMoveScu job is reloaded by a new process (python -m orthanc_lite), with its
    Content (the job type is registered at start-up, before the saved jobs are read)."""
    from tests.e2e.orthanc_peer import spawn_orthanc_lite

    remote_settings = settings.replace(StorageDirectory=str(tmp_path / "remote"), DicomAet="REMOTE")
    async with orthanc_lite.serve(remote_settings, host="127.0.0.1") as remote_srv:
        config = {"SaveJobs": True, "DicomModalities": {"remote": ["REMOTE", "127.0.0.1", remote_srv.dicom_port]}}
        lite = await asyncio.to_thread(spawn_orthanc_lite, tmp_path / "lite", config)
        try:
            async with aiohttp.ClientSession(base_url=lite.url) as http:
                ref = await _post(http, "/modalities/remote/move", {"Level": "Study", "Asynchronous": True,
                                                                    "Resources": [{"StudyInstanceUID": "1.2.3"}],
                                                                    "Permissive": True, "TargetAet": "NOBODY"})
                before = await _poll_job(http, ref["Path"])
                assert before["State"] == "Success"
            await asyncio.to_thread(lite.restart)
            async with aiohttp.ClientSession(base_url=lite.url) as http:
                after = await _get(http, ref["Path"])
        finally:
            await asyncio.to_thread(lite.stop)
    assert after["Type"] == "DicomMoveScu" and after["State"] == "Success"
    assert after["Content"] == before["Content"]


async def test_commit_sent_instances_helper(pair: Pair) -> None:
    """The helper a C-STORE job calls for "StorageCommitment": true (stored there: Success)."""
    from orthanc_lite.dimse.queries import commit_sent_instances, reports

    data = make_instance(patient_id="HELPER")
    for http in (pair.local, pair.remote):
        async with http.post("/instances", data=data) as r:
            stored = await r.json()
    ctx = pair.local_server.app[orthanc_lite.app_keys.CONTEXT]
    uid = await commit_sent_instances(ctx, ctx.registry.modality("remote"), [stored["ID"]])
    report = await _poll_report(pair.local, f"/storage-commitment/{uid}")
    assert report["Status"] == "Success" and len(report["Success"]) == 1
    assert reports(ctx).get(uid) is not None


async def test_store_with_storage_commitment(pair: Pair) -> None:
    """/modalities/{id}/store with "StorageCommitment": true: after the C-STOREs, the job asks the remote to commit
    them; its Content names the transaction, whose report comes back from the remote."""
    data = make_instance(patient_id="STORESC")
    async with pair.local.post("/instances", data=data) as r:
        stored = await r.json()
    job = await _post(pair.local, "/modalities/remote/store", {"Resources": [stored["ParentStudy"]],
                                                               "StorageCommitment": True})
    assert job["InstancesCount"] == 1 and job["FailedInstancesCount"] == 0
    uid = job["StorageCommitmentTransactionUID"]
    report = await _poll_report(pair.local, f"/storage-commitment/{uid}")
    assert report["Status"] == "Success" and report["RemoteAET"] == "REMOTE"
    assert len(report["Success"]) == 1
