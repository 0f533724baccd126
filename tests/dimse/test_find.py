"""C-FIND SCP with dcmtk findscu (patient and study root, every level, wildcards, ranges, lists, PN case),
pynetdicom (C-CANCEL), limits, and Modality Worklists from a folder of .wl files."""

from __future__ import annotations

import asyncio
import io
import pathlib
import threading
import zipfile
from collections.abc import AsyncIterator

import aiohttp
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (
    ModalityWorklistInformationFind,
    StudyRootQueryRetrieveInformationModelFind,
)

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import in_thread, requires_dcmtk, run_tool

pytestmark = requires_dcmtk

FIND_OPEN = {"DicomAlwaysAllowFind": True, "DicomAlwaysAllowFindWorklist": True}


async def _post(http: aiohttp.ClientSession, data: bytes) -> dict:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


@pytest.fixture
async def populated(settings: Settings) -> AsyncIterator[orthanc_lite.Server]:
    """Three patients, four studies, CT and MR series."""
    async with orthanc_lite.serve(settings.replace(**FIND_OPEN), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        s1, s2, s3, s4 = "1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.3", "1.2.826.0.1.4"
        for i in range(3):
            await _post(http, make_instance("PAT1", "Doe^John", study_uid=s1, series_uid=s1 + ".1", modality="CT",
                                            study_date="20240105", instance_number=i + 1))
        await _post(http, make_instance("PAT1", "Doe^John", study_uid=s1, series_uid=s1 + ".2", modality="MR",
                                        study_date="20240105"))
        await _post(http, make_instance("PAT1", "Doe^John", study_uid=s2, series_uid=s2 + ".1", modality="MR",
                                        study_date="20230301"))
        await _post(http, make_instance("PAT2", "Smith^Anna", study_uid=s3, series_uid=s3 + ".1", modality="CT",
                                        study_date="20240220"))
        await _post(http, make_instance("PAT3", "DOE^JANE", study_uid=s4, series_uid=s4 + ".1", modality="US",
                                        study_date="20221231"))
        yield srv


async def findscu(port: int, model: str, keys: dict[str, str], out: pathlib.Path,
                  extra: tuple[str, ...] = ()) -> list[Dataset]:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("rsp*.dcm"):
        old.unlink()
    args: list[str] = [model, "-X", "-od", str(out), "-aet", "FINDSCU", "-aec", "ORTHANC", *extra]
    for key, value in keys.items():
        args += ["-k", f"{key}={value}" if value is not None else key]
    result = await run_tool("findscu", *args, "127.0.0.1", str(port))
    assert result.ok, result.output
    return [pydicom.dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def values(answers: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(getattr(a, keyword, "")) for a in answers)


async def test_study_level_study_root(populated: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    answers = await findscu(populated.dicom_port, "-S", {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": "",
                                                          "PatientName": "", "StudyDate": "",
                                                          "ModalitiesInStudy": "",
                                                          "NumberOfStudyRelatedInstances": ""}, tmp_path)
    assert values(answers, "StudyInstanceUID") == ["1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.3", "1.2.826.0.1.4"]
    first = next(a for a in answers if a.StudyInstanceUID == "1.2.826.0.1.1")
    assert first.QueryRetrieveLevel == "STUDY"
    assert first.RetrieveAETitle == "ORTHANC"
    assert first.SpecificCharacterSet == "ISO_IR 100"  # DefaultEncoding Latin1
    assert str(first.PatientName) == "Doe^John"
    assert list(first.ModalitiesInStudy) == ["CT", "MR"]
    assert int(first.NumberOfStudyRelatedInstances) == 4


async def test_patient_root_every_level(populated: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    port = populated.dicom_port
    patients = await findscu(port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "",
                                          "NumberOfPatientRelatedStudies": ""}, tmp_path / "p")
    assert values(patients, "PatientID") == ["PAT1", "PAT2", "PAT3"]
    assert {str(p.PatientID): int(p.NumberOfPatientRelatedStudies) for p in patients}["PAT1"] == 2
    studies = await findscu(port, "-P", {"QueryRetrieveLevel": "STUDY", "PatientID": "PAT1",
                                         "StudyInstanceUID": ""}, tmp_path / "s")
    assert values(studies, "StudyInstanceUID") == ["1.2.826.0.1.1", "1.2.826.0.1.2"]
    series = await findscu(port, "-P", {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": "1.2.826.0.1.1",
                                        "SeriesInstanceUID": "", "Modality": "",
                                        "NumberOfSeriesRelatedInstances": ""}, tmp_path / "se")
    assert values(series, "Modality") == ["CT", "MR"]
    images = await findscu(port, "-P", {"QueryRetrieveLevel": "IMAGE", "SeriesInstanceUID": "1.2.826.0.1.1.1",
                                        "SOPInstanceUID": "", "InstanceNumber": ""}, tmp_path / "i")
    assert values(images, "InstanceNumber") == ["1", "2", "3"]
    assert all(a.QueryRetrieveLevel == "IMAGE" for a in images)


async def test_wildcards_and_pn_case(populated: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    port = populated.dicom_port
    # PN is case-insensitive (CaseSensitivePN false): "doe*" finds Doe^John and DOE^JANE
    found = await findscu(port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientName": "doe*", "PatientID": ""},
                          tmp_path / "a")
    assert values(found, "PatientID") == ["PAT1", "PAT3"]
    # other VRs are case-sensitive: PatientID "pat*" matches nothing
    assert await findscu(port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "pat*"}, tmp_path / "b") == []
    found = await findscu(port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientID": "PAT?"}, tmp_path / "c")
    assert values(found, "PatientID") == ["PAT1", "PAT2", "PAT3"]


async def test_case_sensitive_pn(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with orthanc_lite.serve(settings.replace(CaseSensitivePN=True, **FIND_OPEN), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        await _post(http, make_instance("CASE", "Doe^John"))
        assert await findscu(srv.dicom_port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientName": "doe*"},
                             tmp_path / "a") == []
        assert len(await findscu(srv.dicom_port, "-P", {"QueryRetrieveLevel": "PATIENT", "PatientName": "Doe*"},
                                 tmp_path / "b")) == 1


async def test_date_ranges_and_lists(populated: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    port = populated.dicom_port
    q = {"QueryRetrieveLevel": "STUDY", "StudyInstanceUID": ""}
    assert values(await findscu(port, "-S", {**q, "StudyDate": "20240101-20241231"}, tmp_path / "a"),
                  "StudyInstanceUID") == ["1.2.826.0.1.1", "1.2.826.0.1.3"]
    assert values(await findscu(port, "-S", {**q, "StudyDate": "-20230301"}, tmp_path / "b"),
                  "StudyInstanceUID") == ["1.2.826.0.1.2", "1.2.826.0.1.4"]
    assert values(await findscu(port, "-S", {**q, "StudyDate": "20240220-"}, tmp_path / "c"),
                  "StudyInstanceUID") == ["1.2.826.0.1.3"]
    assert values(await findscu(port, "-S", {**q, "StudyInstanceUID": "1.2.826.0.1.2\\1.2.826.0.1.4"},
                                tmp_path / "d"), "StudyInstanceUID") == ["1.2.826.0.1.2", "1.2.826.0.1.4"]
    assert values(await findscu(port, "-S", {**q, "ModalitiesInStudy": "US\\MR"}, tmp_path / "e"),
                  "StudyInstanceUID") == ["1.2.826.0.1.1", "1.2.826.0.1.2", "1.2.826.0.1.4"]


async def test_bad_queries_fail(populated: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    port = str(populated.dicom_port)
    # no QueryRetrieveLevel
    result = await run_tool("findscu", "-v", "-S", "-aec", "ORTHANC", "-k", "PatientID=PAT1", "127.0.0.1", port)
    assert "Final Find Response (Failed: UnableToProcess)" in result.output, result.output
    # a wildcard on a date
    result = await run_tool("findscu", "-v", "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
                            "-k", "StudyDate=2024*", "127.0.0.1", port)
    assert "Final Find Response (Failed: UnableToProcess)" in result.output, result.output


async def test_find_not_allowed_for_unknown_aet(settings: Settings, tmp_path: pathlib.Path) -> None:
    """DicomAlwaysAllowFind is false by default: an unknown AET may associate (store/echo are open) but its
    C-FIND aborts the association, as Orthanc 1.10.1 does."""
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv:
        result = await run_tool("findscu", "-S", "-aet", "STRANGER", "-aec", "ORTHANC", "-k",
                                "QueryRetrieveLevel=STUDY", "127.0.0.1", str(srv.dicom_port))
        assert "Peer aborted Association" in result.output, result.output


async def test_limit_find_results_ends_with_fe00(settings: Settings, tmp_path: pathlib.Path) -> None:
    async with orthanc_lite.serve(settings.replace(LimitFindResults=2, **FIND_OPEN), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        for i in range(5):
            await _post(http, make_instance(f"LIM{i}"))
        result = await run_tool("findscu", "-v", "-S", "-aec", "ORTHANC", "-k", "QueryRetrieveLevel=STUDY",
                                "-k", "StudyInstanceUID", "127.0.0.1", str(srv.dicom_port))
        assert result.output.count("Pending") == 2, result.output
        assert "Final Find Response (Cancel: MatchingTerminatedDueToCancelRequest)" in result.output, result.output


def _find_and_cancel(port: int) -> tuple[int, int]:
    """C-FIND, C-CANCEL after the first answer; (answers received, final status)."""
    ae = AE(ae_title="CANCELLER")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    assert assoc.is_established
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ""
    count = 0
    final = -1
    try:
        responses = assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind, msg_id=7)
        for rsp_status, _identifier in responses:
            code = int(rsp_status.Status)
            if code in (0xFF00, 0xFF01):
                count += 1
                if count == 1:
                    assoc.send_c_cancel(7, query_model=StudyRootQueryRetrieveInformationModelFind)
            else:
                final = code
    finally:
        assoc.release()
    return count, final


async def test_c_cancel_stops_the_answers(settings: Settings) -> None:
    async with orthanc_lite.serve(settings.replace(**FIND_OPEN), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        study, series = generate_uid(), generate_uid()
        # Enough answers (several batches of the search cursor) that streaming them all takes far longer than
        # the C-CANCEL round trip, even with the SCU and the server sharing one process; one ZIP upload.
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as archive:
            for i in range(1000):
                archive.writestr(f"{i}.dcm", make_instance("MANY", study_uid=study, series_uid=series,
                                                           instance_number=i))
        async with http.post("/instances", data=buf.getvalue()) as resp:
            assert resp.status == 200
        count, final = await in_thread(_find_and_cancel, srv.dicom_port)
        assert final == 0xFE00
        assert count < 1000


# -- Modality Worklists ---------------------------------------------------------------------------


def _worklist(folder: pathlib.Path, name: str, patient: str, patient_id: str, station: str, date: str,
              modality: str, accession: str) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.AccessionNumber = accession
    ds.PatientName = patient
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19800101"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = generate_uid()
    ds.RequestedProcedureDescription = "Chest " + modality
    step = Dataset()
    step.Modality = modality
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.ScheduledProcedureStepStartTime = "101500"
    step.ScheduledPerformingPhysicianName = "Who^Doctor"
    step.ScheduledProcedureStepDescription = "Step " + modality
    step.ScheduledProcedureStepID = "SPS-" + accession
    ds.ScheduledProcedureStepSequence = [step]
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.276.0.7230010.3.1.0.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(folder / name, enforce_file_format=True)


@pytest.fixture
async def worklist_server(settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[orthanc_lite.Server]:
    folder = tmp_path / "worklists"
    folder.mkdir()
    _worklist(folder, "a.wl", "Doe^Jane", "W1", "CT01", "20240105", "CT", "ACC1")
    _worklist(folder, "b.wl", "Roe^Rick", "W2", "MR01", "20240106", "MR", "ACC2")
    _worklist(folder, "c.wl", "Doe^Jack", "W3", "CT01", "20240210", "CT", "ACC3")
    (folder / "not-a-worklist.txt").write_text("ignored")
    (folder / "broken.wl").write_bytes(b"garbage")
    s = settings.replace(Worklists={"Enable": True, "Database": str(folder)}, **FIND_OPEN)
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        yield srv


WL_KEYS = {"PatientName": "", "PatientID": "", "AccessionNumber": "",
           "ScheduledProcedureStepSequence[0].Modality": "",
           "ScheduledProcedureStepSequence[0].ScheduledStationAETitle": "",
           "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate": ""}


async def test_worklist_all_and_filters(worklist_server: orthanc_lite.Server, tmp_path: pathlib.Path) -> None:
    port = worklist_server.dicom_port
    everything = await findscu(port, "-W", WL_KEYS, tmp_path / "a")
    assert values(everything, "AccessionNumber") == ["ACC1", "ACC2", "ACC3"]
    first = next(a for a in everything if a.AccessionNumber == "ACC1")
    assert first.ScheduledProcedureStepSequence[0].Modality == "CT"
    assert "RequestedProcedureDescription" not in first  # only the requested keys come back
    by_modality = await findscu(port, "-W", {**WL_KEYS, "ScheduledProcedureStepSequence[0].Modality": "MR"},
                                tmp_path / "b")
    assert values(by_modality, "AccessionNumber") == ["ACC2"]
    by_date = await findscu(port, "-W", {
        **WL_KEYS, "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate": "20240101-20240131"},
        tmp_path / "c")
    assert values(by_date, "AccessionNumber") == ["ACC1", "ACC2"]
    by_name = await findscu(port, "-W", {**WL_KEYS, "PatientName": "doe*"}, tmp_path / "d")
    assert values(by_name, "AccessionNumber") == ["ACC1", "ACC3"]
    by_station = await findscu(port, "-W", {
        **WL_KEYS, "ScheduledProcedureStepSequence[0].ScheduledStationAETitle": "CT01"}, tmp_path / "e")
    assert values(by_station, "AccessionNumber") == ["ACC1", "ACC3"]


async def test_worklist_filter_issuer_aet(settings: Settings, tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "wl"
    folder.mkdir()
    _worklist(folder, "a.wl", "Doe^Jane", "W1", "CT01", "20240105", "CT", "ACC1")
    _worklist(folder, "b.wl", "Roe^Rick", "W2", "MR01", "20240106", "MR", "ACC2")
    s = settings.replace(Worklists={"Enable": True, "Database": str(folder), "FilterIssuerAet": True}, **FIND_OPEN)
    async with orthanc_lite.serve(s, host="127.0.0.1") as srv:
        out = tmp_path / "out"
        out.mkdir()
        result = await run_tool("findscu", "-W", "-X", "-od", out, "-aet", "MR01", "-aec", "ORTHANC",
                                "-k", "AccessionNumber", "127.0.0.1", str(srv.dicom_port))
        assert result.ok, result.output
        answers = [pydicom.dcmread(p) for p in out.glob("rsp*.dcm")]
        assert values(answers, "AccessionNumber") == ["ACC2"]


async def test_worklists_disabled_refuses_the_sop_class(populated: orthanc_lite.Server,
                                                        tmp_path: pathlib.Path) -> None:
    result = await run_tool("findscu", "-W", "-aec", "ORTHANC", "-k", "PatientName", "127.0.0.1",
                            str(populated.dicom_port))
    assert not result.ok
    assert "No Acceptable Presentation Contexts" in result.output or "presentation context" in result.output.lower()


def _pynetdicom_worklist(port: int) -> list[Dataset]:
    ae = AE(ae_title="WLSCU")
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", port, ae_title="ORTHANC")
    assert assoc.is_established
    q = Dataset()
    q.PatientName = "*"
    step = Dataset()
    step.Modality = "CT"
    q.ScheduledProcedureStepSequence = [step]
    out = []
    try:
        for rsp, identifier in assoc.send_c_find(q, ModalityWorklistInformationFind):
            if int(rsp.Status) in (0xFF00, 0xFF01):
                out.append(identifier)
    finally:
        assoc.release()
    return out


async def test_worklist_with_pynetdicom(worklist_server: orthanc_lite.Server) -> None:
    answers = await in_thread(_pynetdicom_worklist, worklist_server.dicom_port)
    assert sorted(str(a.PatientName) for a in answers) == ["Doe^Jack", "Doe^Jane"]


__all__ = ["asyncio", "threading"]
