"""Pure parts of query/retrieve: C-FIND normalization per level, manufacturer quirks, identifier building,
Orthanc's JSON formats of flat DICOM maps."""

from __future__ import annotations

import pytest

from orthanc_lite.config import Modality
from orthanc_lite.dicom.query_map import (
    dataset_to_map,
    fix_wildcards,
    map_from_json,
    map_to_dataset,
    map_to_json,
    move_keys,
    normalize_find_query,
)
from orthanc_lite.dimse.qr_scu import Remote, build_find_identifier
from orthanc_lite.model import ResourceLevel

PATIENT_NAME, PATIENT_ID, STUDY_DATE, STUDY_UID = 0x00100010, 0x00100020, 0x00080020, 0x0020000D
SERIES_UID, SOP_UID, MODALITY, MANUFACTURER = 0x0020000E, 0x00080018, 0x00080060, 0x00080070


def _remote(manufacturer: str = "Generic") -> Remote:
    return Remote("ME", Modality("PACS", "127.0.0.1", 104, Manufacturer=manufacturer), 10.0)


def test_normalize_keeps_the_level_and_its_parents() -> None:
    query = {PATIENT_NAME: "A*", STUDY_DATE: "2020", MODALITY: "CT", SOP_UID: "1.2", MANUFACTURER: "X"}
    kept, ignored = normalize_find_query(ResourceLevel.STUDY, query)
    assert kept == {PATIENT_NAME: "A*", STUDY_DATE: "2020"}
    assert sorted(ignored) == sorted([MODALITY, SOP_UID, MANUFACTURER])
    kept, _ = normalize_find_query(ResourceLevel.SERIES, query)
    assert MODALITY in kept and MANUFACTURER not in kept  # Manufacturer is no General Series tag
    kept, _ = normalize_find_query(ResourceLevel.STUDY, {0x00080061: "CT", 0x00201208: ""})
    assert kept == {0x00080061: "CT", 0x00201208: ""}  # the study counters and ModalitiesInStudy


def test_identifier_gets_level_keys_and_level() -> None:
    ident = build_find_identifier(_remote(), ResourceLevel.SERIES, {PATIENT_NAME: "X"}, True)
    assert ident == {PATIENT_NAME: "X", SERIES_UID: "", 0x00080050: "", STUDY_UID: "", PATIENT_ID: "",
                     0x00080052: "SERIES"}
    ge = build_find_identifier(_remote("GE"), ResourceLevel.PATIENT, {}, True)
    assert ge == {PATIENT_ID: "*", 0x00080052: "PATIENT"}  # GE wants "*" for universal matching
    raw = build_find_identifier(_remote(), ResourceLevel.STUDY, {MODALITY: "CT"}, False)
    assert raw[MODALITY] == "CT"  # Normalize=false sends every tag


@pytest.mark.parametrize(("manufacturer", "expected"), [
    ("Generic", {STUDY_DATE: "*", PATIENT_NAME: "*"}),
    ("GenericNoWildcardInDates", {STUDY_DATE: "", PATIENT_NAME: "*"}),
    ("GenericNoUniversalWildcard", {STUDY_DATE: "", PATIENT_NAME: ""}),
])
def test_manufacturer_wildcards(manufacturer: str, expected: dict[int, str]) -> None:
    assert fix_wildcards({STUDY_DATE: "*", PATIENT_NAME: "*"}, manufacturer) == expected


def test_json_formats_and_back() -> None:
    m = {PATIENT_NAME: "Doe^J", 0x00280010: None}
    assert map_to_json(m, "human") == {"PatientName": "Doe^J", "Rows": None}
    assert map_to_json(m, "short") == {"0010,0010": "Doe^J", "0028,0010": None}
    assert map_to_json(m, "full")["0028,0010"] == {"Name": "Rows", "Type": "Null", "Value": None}
    assert map_from_json({"PatientName": "A", "0020,000d": "1.2", "SeriesNumber": 3}) == {
        PATIENT_NAME: "A", STUDY_UID: "1.2", 0x00200011: "3"}
    with pytest.raises(ValueError):
        map_from_json({"NoSuchTag": "x"})
    with pytest.raises(ValueError):
        map_from_json({"PatientName": ["x"]})


def test_dataset_round_trip_and_move_keys() -> None:
    ds = map_to_dataset({PATIENT_NAME: "Müller", STUDY_UID: "1.2.3", 0x00280010: ""}, "Utf8")
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    back = dataset_to_map(ds)
    assert back[PATIENT_NAME] == "Müller" and back[STUDY_UID] == "1.2.3"
    answer = {PATIENT_ID: "P", STUDY_UID: "1.2", SERIES_UID: "1.2.3", 0x00080052: "SERIES"}
    assert move_keys(ResourceLevel.SERIES, answer) == {STUDY_UID: "1.2", SERIES_UID: "1.2.3"}
    with pytest.raises(KeyError):
        move_keys(ResourceLevel.INSTANCE, answer)


def test_retrieve_work_survives_serialization() -> None:
    from orthanc_lite.dimse.queries import RetrieveCommand, RetrieveWork
    from orthanc_lite.jobs.base import job_class
    from orthanc_lite.jobs.retrieve import RetrieveJob

    answer = {PATIENT_ID: "P", STUDY_UID: "1.2", 0x00080052: "STUDY", 0x00080005: "ISO_IR 100"}
    work = RetrieveWork("C-MOVE", _remote(), [RetrieveCommand(answer, from_answer=True)], "DEST", "human")
    work.position = 1
    job = RetrieveJob(work)
    assert job.job_type == "DicomMoveScu"
    again = job_class("DicomMoveScu").deserialize(job.serialize())
    assert isinstance(again, RetrieveJob) and again.job_type == "DicomMoveScu"
    assert again.content() == job.content() == {
        "Description": "REST API", "LocalAet": "ME", "RemoteAet": "PACS", "TargetAet": "DEST",
        "Query": [{"QueryRetrieveLevel": "STUDY", "PatientID": "P", "StudyInstanceUID": "1.2"}]}
    assert again.progress() == 1.0
    again.reset()
    assert again.progress() == 0.0
    get = RetrieveJob(RetrieveWork("C-GET", _remote(), [], ""))
    assert get.job_type == "DicomGetScu" and "TargetAet" not in get.content()


def test_query_retrieve_routes_document_themselves() -> None:
    from aiohttp import web

    from orthanc_lite.rest import queries

    for route in queries.routes:
        assert isinstance(route, web.RouteDef)
        doc = (route.handler.__doc__ or "").strip()
        assert doc and doc.splitlines()[0].endswith((".", ")")), f"{route.method} {route.path}"
