"""POST /tools/find and /tools/count-resources over real HTTP: every matching rule, the options, the errors."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.find.conftest import STUDIES, Store, upload_store

ALL = set(STUDIES)


# --- levels and errors --------------------------------------------------------------------------


@pytest.mark.parametrize("level, count", [("Study", 11), ("studies", 11), ("STUDY", 11), ("Patient", 11),
                                          ("patients", 11), ("Series", 12), ("Instance", 13), ("Image", 13),
                                          ("instances", 13)])
async def test_levels(store: Store, level: str, count: int) -> None:
    assert len(await store.find({"Level": level, "Query": {}})) == count


@pytest.mark.parametrize("body, status, orthanc_status, details", [
    (b"not json", 400, 8, "The body must contain a JSON object"),
    (b"", 400, 8, "The body must contain a JSON object"),
    ([1], 400, 8, "The body must contain a JSON object"),
    ({"Query": {}}, 400, 8, "Field \"Level\" is missing, or should be a string"),
    ({"Level": 1, "Query": {}}, 400, 8, "Field \"Level\" is missing, or should be a string"),
    ({"Level": "Study"}, 400, 8, "Field \"Query\" is missing, or should be a JSON object"),
    ({"Level": "Study", "Query": []}, 400, 8, "Field \"Query\" is missing, or should be a JSON object"),
    ({"Level": "Foo", "Query": {}}, 400, 3, None),
    ({"Level": "Study", "Query": {"PatientName": 1}}, 400, 8, "Tag \"PatientName\" should be associated with a string"),
    ({"Level": "Study", "Query": {"NoSuchTag": "x"}}, 400, 27, None),
    ({"Level": "Study", "Query": {}, "Limit": -1}, 400, 3, "Field \"Limit\" should be a positive integer"),
    ({"Level": "Study", "Query": {}, "Limit": "1"}, 400, 8, "Field \"Limit\" should be an integer"),
    ({"Level": "Study", "Query": {}, "Since": 1.5}, 400, 8, "Field \"Since\" should be an integer"),
    ({"Level": "Study", "Query": {}, "Since": True}, 400, 8, "Field \"Since\" should be an integer"),
    ({"Level": "Study", "Query": {}, "CaseSensitive": 1}, 400, 8, "Field \"CaseSensitive\" should be a Boolean"),
    ({"Level": "Study", "Query": {}, "Expand": "yes"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "RequestedTags": "PatientName"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "RequestedTags": ["Nope"]}, 400, 27, None),
    ({"Level": "Study", "Query": {}, "Labels": "a"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "Labels": [1]}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "Labels": ["bad label"]}, 400, 3, None),
    ({"Level": "Study", "Query": {}, "LabelsConstraint": "Some"}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "OrderBy": {}}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "OrderBy": [{"Type": "Foo", "Key": "StudyDate", "Direction": "ASC"}]}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "OrderBy": [{"Type": "DicomTag", "Key": "StudyDate", "Direction": "UP"}]}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "OrderBy": [{"Type": "Metadata", "Key": "NoSuchMetadata", "Direction": "ASC"}]},
     400, 3, None),
    ({"Level": "Study", "Query": {}, "MetadataQuery": []}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "ResponseContent": ["Nope"]}, 400, 3, None),
    ({"Level": "Study", "Query": {}, "ParentPatient": 3}, 400, 8, None),
    ({"Level": "Study", "Query": {}, "ParentSeries": "x"}, 400, 5, None),
    ({"Level": "Study", "Query": {"StudyDate": "2020*"}}, 400, 3, "Wildcards are not allowed on tag 0008,0020"),
    ({"Level": "Study", "Query": {"StudyDate": "2020*-"}}, 400, 3, "Wildcards are not allowed on tag 0008,0020"),
    ({"Level": "Study", "Query": {"StudyInstanceUID": "1.2.*"}}, 400, 3, "Wildcards are not allowed on tag 0020,000d"),
    ({"Level": "Study", "Query": {"Rows": "4"}, "Since": 1}, 400, 8, None),
])
async def test_bad_requests(store: Store, body: Any, status: int, orthanc_status: int, details: str | None) -> None:
    answer = await store.error(body, status)
    assert answer["HttpStatus"] == status and answer["OrthancStatus"] == orthanc_status
    assert answer["Method"] == "POST" and answer["Uri"] == "/tools/find"
    if details is not None:
        assert answer["Details"] == details


# --- matching rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("query, expected", [
    ({"PatientName": "Doe^John"}, {"P1"}),
    ({"PatientName": "DOE^JOHN"}, {"P1"}),                     # REST: case-insensitive by default
    ({"PatientName": "o'brien*"}, {"P4"}),
    ({"PatientName": "doe*"}, {"P1", "P2"}),
    ({"PatientName": "D?E^J*"}, {"P1", "P2"}),
    ({"PatientName": "*^*"}, {"P1", "P2", "P3", "P4", "p7"}),
    ({"PatientName": "*"}, ALL),                                # every study has the tag
    ({"PatientName": ""}, ALL),                                 # empty = universal
    ({"PatientName": "élodie*"}, {"P3", "p7"}),                 # Unicode case folding
    ({"PatientName": "ÉLODIE^MARTIN"}, {"P3", "p7"}),
    ({"PatientName": "ELODIE*"}, set()),                        # accents are not ignored
    ({"PatientID": "p*"}, ALL),
    ({"PatientID": "P1"}, {"P1"}),
    ({"PatientID": "P1\\P4\\nope"}, {"P1", "P4"}),              # lists
    ({"AccessionNumber": "ACC-2"}, {"P2"}),
    ({"InstitutionName": "hospital a"}, {"P1"}),
    ({"InstitutionName": "hôpital"}, {"P6", "p7"}),             # Orthanc: SQL lower() folds ASCII only
    ({"InstitutionName": "HÔPITAL"}, set()),
    ({"InstitutionName": "H?PITAL"}, {"P6", "p7"}),            # "?" is one character (Orthanc: one byte)
    ({"StudyDate": "20200101-20221231"}, {"P3", "P4", "P5"}),   # ranges, bounds included
    ({"StudyDate": "20230101-"}, {"P1", "P2"}),
    ({"StudyDate": "-20160101"}, {"P9", "P10", "P11"}),        # P10's StudyDate is empty
    ({"StudyDate": "20240102"}, {"P1"}),
    ({"StudyDate": "20240102\\20150101"}, {"P1", "P11"}),
    ({"StudyDate": "20200101-20221231\\20240102"}, {"P3", "P4", "P5"}),  # the range rule comes first
    ({"StudyDate": "-"}, ALL),                                  # no bound: universal
    ({"PatientName": "doe*", "StudyDate": "20240101-"}, {"P1"}),
    ({"ModalitiesInStudy": "MR"}, {"P1", "P2", "P11"}),
    ({"ModalitiesInStudy": "mr\\us"}, {"P1", "P2", "P3", "P11"}),
    ({"ModalitiesInStudy": "C?"}, {"P1", "P4", "P5", "P6", "p7", "P9", "P10"}),
    ({"ModalitiesInStudy": "U*\\M*"}, set()),                   # no wildcards inside lists
    ({"Modality": "CT"}, set()),                                # a series tag at study level matches nothing
    ({"SeriesNumber": "1"}, set()),
    ({"StudyDescription": "[brackets]"}, {"P9"}),
    ({"StudyDescription": "[*"}, {"P9"}),
    ({"StudyDescription": "*]"}, {"P9"}),
])
async def test_study_matching(store: Store, query: dict[str, str], expected: set[str]) -> None:
    assert await store.pids("Study", query) == expected


@pytest.mark.parametrize("value, expected", [
    ("O'Brien^Pat", {"P4"}),
    ("*'*", {"P4", "P11"}),
    ("100%_sure", {"P5"}),
    ("100%*", {"P5"}),          # "%" is not a wildcard
    ("100_*", set()),           # "_" is not a wildcard
    ("100?_sure*", {"P5", "P10"}),  # "100x_surely" too: "?" is any one character
    ("*_*", {"P5", "P9", "P10"}),
    ("*%*", {"P5"}),
    ("star*name", {"P6"}),      # "*" is always a wildcard in DICOM
    ("star?name", {"P6"}),
    ("*\\*", set()),            # "\\" makes a list: "*" and "*" compared exactly
    ("back\\slash", set()),     # a list of "back" and "slash", while the value is "back\\slash"
    ("Robert'); DROP TABLE resources;--", {"P11"}),
    ("*; DROP*", {"P11"}),
])
async def test_injection_characters(store: Store, value: str, expected: set[str]) -> None:
    assert await store.pids("Study", {"PatientName": value}) == expected
    assert await store.pids("Study", {"PatientName": value}, CaseSensitive=True) == expected
    assert len(await store.find({"Level": "Instance", "Query": {}})) == 13  # nothing was harmed


@pytest.mark.parametrize("query, expected", [
    ({"PatientName": "doe^john"}, set()),
    ({"PatientName": "Doe^John"}, {"P1"}),
    ({"PatientName": "D*"}, {"P1"}),
    ({"PatientID": "p*"}, {"p7"}),
    ({"PatientID": "p7\\P1"}, {"P1", "p7"}),
    ({"AccessionNumber": "acc-1"}, set()),
    ({"InstitutionName": "Hôpital"}, {"P6"}),
    ({"ModalitiesInStudy": "mr"}, set()),
])
async def test_case_sensitive(store: Store, query: dict[str, str], expected: set[str]) -> None:
    assert await store.pids("Study", query, CaseSensitive=True) == expected


async def test_other_levels(store: Store) -> None:
    assert await store.pids("Patient", {"PatientName": "doe*"}) == {"P1", "P2"}
    assert await store.pids("Patient", {"StudyDate": "20240102"}) == set()  # study tag at patient level
    assert await store.pids("Series", {"Modality": "CT"}) == {"P1", "P4", "P5", "P6", "p7", "P10"}
    assert await store.pids("Series", {"Modality": "CT", "PatientName": "doe*"}) == {"P1"}
    assert await store.pids("Series", {"StudyDate": "20240101-", "Modality": "mr"}) == {"P1"}
    assert await store.pids("Series", {"ModalitiesInStudy": "MR"}) == set()  # as Orthanc 1.10.1
    assert await store.pids("Instance", {"Modality": "CT", "StudyDate": "20240102"}) == {"P1"}
    assert len(await store.find({"Level": "Instance", "Query": {"Modality": "CT", "StudyDate": "20240102"}})) == 2
    assert await store.pids("Instance", {"InstanceNumber": "2"}) == {"P1"}
    assert await store.pids("Instance", {"SOPInstanceUID": "1.2.826.0.1.3680043.10.543.2.1.1"}) == {"P2"}
    assert await store.pids("Series", {"SeriesInstanceUID": "1.2.826.0.1.3680043.10.543.1.2"}) == {"P1"}


async def test_non_main_tags_are_read_from_files(store: Store) -> None:
    assert await store.pids("Study", {"Rows": "16"}) == {"P8"}
    assert await store.pids("Instance", {"Rows": "16"}) == {"P8"}
    assert await store.pids("Study", {"Rows": "16", "PatientName": "nope"}) == set()
    assert await store.pids("Study", {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}) == ALL
    assert await store.pids("Study", {"NumberOfStudyRelatedInstances": "3"}) == {"P1"}
    assert await store.pids("Patient", {"NumberOfPatientRelatedSeries": "2"}) == {"P1"}


async def test_injection_in_every_clause(store: Store) -> None:
    nasty = "x' OR '1'='1"
    assert await store.find({"Level": "Study", "Query": {"StudyInstanceUID": nasty}}) == []
    assert await store.find({"Level": "Study", "Query": {}, "Labels": ["x"], "LabelsConstraint": "Any"}) == []
    assert await store.find({"Level": "Study", "Query": {}, "MetadataQuery": {"RemoteAET": nasty}}) == []
    assert await store.find({"Level": "Study", "Query": {}, "ParentPatient": nasty}) == []
    assert len(await store.find({"Level": "Study", "Query": {}})) == 11


# --- answers ------------------------------------------------------------------------------------


async def test_expand_is_the_resource(store: Store) -> None:
    for level, path in (("Patient", "patients"), ("Study", "studies"), ("Series", "series"), ("Instance", "instances")):
        answer = await store.find({"Level": level, "Query": {"PatientID": "P1"}, "Expand": True})
        assert answer, level
        for item in answer:
            async with store.http.get(f"/{path}/{item['ID']}") as resp:
                expected = await resp.json()
            item.pop("IsStable", None), expected.pop("IsStable", None)
            assert item == expected


async def test_formats(store: Store) -> None:
    body = {"Level": "Study", "Query": {"PatientID": "P1"}, "Expand": True, "RequestedTags": ["PatientName", "Rows"]}
    human = (await store.find(body))[0]
    assert human["MainDicomTags"]["StudyDate"] == "20240102"
    assert human["RequestedTags"] == {"PatientName": "Doe^John", "Rows": "4"}
    short = (await store.find({**body, "Short": True}))[0]
    assert short["MainDicomTags"]["0008,0020"] == "20240102"
    assert short["RequestedTags"] == {"0010,0010": "Doe^John", "0028,0010": "4"}
    full = (await store.find({**body, "Full": True}))[0]
    assert full["MainDicomTags"]["0008,0020"] == {"Name": "StudyDate", "Type": "String", "Value": "20240102"}
    assert full["RequestedTags"]["0028,0010"] == {"Name": "Rows", "Type": "String", "Value": "4"}
    ids = await store.find({"Level": "Study", "Query": {"PatientID": "P1"}, "RequestedTags": ["PatientName"]})
    assert ids == [store.studies["P1"]]  # without Expand: identifiers only


async def test_requested_tags(store: Store) -> None:
    answer = await store.find({"Level": "Study", "Query": {"PatientID": "P1"}, "Expand": True, "RequestedTags": [
        "ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "SOPClassesInStudy",
        "InstanceAvailability", "PatientName", "StudyDate", "Modality", "0028,0011", "ImageComments",
        "TransferSyntaxUID", "0010,1010"]})
    assert answer[0]["RequestedTags"] == {
        "ModalitiesInStudy": "CT\\MR", "NumberOfStudyRelatedSeries": "2", "NumberOfStudyRelatedInstances": "3",
        "SOPClassesInStudy": "1.2.840.10008.5.1.4.1.1.2", "InstanceAvailability": "ONLINE",
        "PatientName": "Doe^John", "StudyDate": "20240102",
        "Modality": "CT",          # a series tag: read from one instance file
        "Columns": "4",            # not a main tag: read from the file
        "ImageComments": None,     # absent from the file
        "PatientAge": None,        # absent
    }                              # the meta-header (TransferSyntaxUID) is never returned
    patient = await store.find({"Level": "Patient", "Query": {"PatientID": "P1"}, "Expand": True, "RequestedTags": [
        "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances"]})
    assert patient[0]["RequestedTags"] == {"NumberOfPatientRelatedStudies": "1", "NumberOfPatientRelatedSeries": "2",
                                           "NumberOfPatientRelatedInstances": "3"}
    series = await store.find({"Level": "Series", "Query": {"PatientID": "P1", "Modality": "CT"}, "Expand": True,
                               "RequestedTags": ["NumberOfSeriesRelatedInstances", "StudyDate", "PatientID"]})
    assert series[0]["RequestedTags"] == {"NumberOfSeriesRelatedInstances": "2", "StudyDate": "20240102",
                                          "PatientID": "P1"}
    instance = await store.find({"Level": "Instance", "Query": {"PatientID": "P2"}, "Expand": True,
                                 "RequestedTags": ["SOPClassUID", "Modality", "StudyDate", "PatientName", "Rows"]})
    assert instance[0]["RequestedTags"] == {"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2", "Modality": "MR",
                                            "StudyDate": "20230510", "PatientName": "doe^jane", "Rows": "4"}


async def test_labels(store: Store) -> None:
    for pid, labels in (("P1", ["red", "blue"]), ("P2", ["red"]), ("P3", ["green"])):
        for label in labels:
            async with store.http.put(f"/studies/{store.studies[pid]}/labels/{label}", data=b"") as resp:
                assert resp.status == 200
    assert await store.pids("Study", {}, Labels=["red"]) == {"P1", "P2"}
    assert await store.pids("Study", {}, Labels=["red", "blue"]) == {"P1"}
    assert await store.pids("Study", {}, Labels=["red", "blue"], LabelsConstraint="All") == {"P1"}
    assert await store.pids("Study", {}, Labels=["blue", "green"], LabelsConstraint="Any") == {"P1", "P3"}
    assert await store.pids("Study", {}, Labels=["red"], LabelsConstraint="None") == ALL - {"P1", "P2"}
    assert await store.pids("Study", {}, Labels=[], LabelsConstraint="None") == ALL - {"P1", "P2", "P3"}
    assert await store.pids("Study", {}, Labels=[], LabelsConstraint="Any") == ALL
    assert await store.pids("Study", {"PatientName": "doe*"}, Labels=["blue"]) == {"P1"}
    assert await store.pids("Patient", {}, Labels=["red"]) == set()  # labels are per resource
    answer = await store.find({"Level": "Study", "Query": {}, "Labels": ["red"], "Expand": True})
    assert sorted(answer[0]["Labels"]) == ["blue", "red"]


async def test_metadata_query(store: Store) -> None:
    async with store.http.put(f"/studies/{store.studies['P4']}/metadata/1025", data=b"Reviewed-OK") as resp:
        assert resp.status == 200, await resp.text()
    assert await store.pids("Study", {}, MetadataQuery={"1025": "Reviewed-OK"}) == {"P4"}
    assert await store.pids("Study", {}, MetadataQuery={"1025": "reviewed*"}) == {"P4"}
    assert await store.pids("Study", {}, MetadataQuery={"1025": "reviewed*"}, CaseSensitive=True) == set()
    assert await store.pids("Study", {}, MetadataQuery={"1025": "x\\Reviewed-OK"}) == {"P4"}
    assert await store.pids("Study", {}, MetadataQuery={"1025": ""}) == ALL
    assert await store.pids("Instance", {}, MetadataQuery={"Origin": "RestApi"}) == ALL
    assert await store.pids("Instance", {}, MetadataQuery={"Origin": "Dicom*"}) == set()


async def test_parents(store: Store) -> None:
    p1 = store.patients["P1"]
    assert await store.find({"Level": "Study", "Query": {}, "ParentPatient": p1}) == [store.studies["P1"]]
    assert await store.find({"Level": "Patient", "Query": {}, "ParentPatient": p1}) == [p1]
    assert set(await store.find({"Level": "Instance", "Query": {}, "ParentStudy": store.studies["P1"]})) == \
        set(store.instances["P1"])
    ct = store.series["P1"][0]
    assert await store.find({"Level": "Instance", "Query": {"InstanceNumber": "2"}, "ParentSeries": ct}) == \
        [store.instances["P1"][1]]
    assert await store.find({"Level": "Series", "Query": {}, "ParentPatient": store.patients["P2"],
                             "ParentStudy": store.studies["P1"]}) == []
    assert await store.find({"Level": "Series", "Query": {}, "ParentStudy": "nope"}) == []


async def test_order_by(store: Store) -> None:
    def body(*order: dict[str, str], **extra: Any) -> dict[str, Any]:
        return {"Level": "Study", "Query": {"StudyDate": "20150101-"}, "OrderBy": list(order), **extra}

    asc = [store.owner(i) for i in await store.find(body({"Type": "DicomTag", "Key": "StudyDate", "Direction": "ASC"}))]
    assert asc == ["P11", "P9", "P8", "p7", "P6", "P5", "P4", "P3", "P2", "P1"]
    desc = await store.find(body({"Type": "DicomTag", "Key": "0008,0020", "Direction": "DESC"}, Limit=3, Since=1))
    assert [store.owner(i) for i in desc] == ["P2", "P3", "P4"]
    by_name = await store.find(body({"Type": "DicomTag", "Key": "PatientName", "Direction": "ASC"}, Limit=2))
    assert [store.owner(i) for i in by_name] == ["P5", "P1"]  # byte order: "1" < "D" < "b" < "É"
    series = await store.find({"Level": "Series", "Query": {"PatientID": "P1"},
                               "OrderBy": [{"Type": "DicomTagAsInt", "Key": "SeriesNumber", "Direction": "DESC"}]})
    assert series == list(reversed(store.series["P1"]))
    async with store.http.put(f"/studies/{store.studies['P3']}/metadata/1024", data=b"10") as resp:
        assert resp.status == 200
    async with store.http.put(f"/studies/{store.studies['P4']}/metadata/1024", data=b"9") as resp:
        assert resp.status == 200
    as_text = await store.find(body({"Type": "Metadata", "Key": "1024", "Direction": "DESC"}, Limit=2))
    assert [store.owner(i) for i in as_text] == ["P4", "P3"]  # "9" > "10"
    as_int = await store.find(body({"Type": "MetadataAsInt", "Key": "1024", "Direction": "DESC"}, Limit=2))
    assert [store.owner(i) for i in as_int] == ["P3", "P4"]


async def test_limit_and_since_page_through(store: Store) -> None:
    everything = await store.find({"Level": "Instance", "Query": {}})
    assert len(everything) == 13
    pages = []
    for since in range(0, 13, 4):
        pages += await store.find({"Level": "Instance", "Query": {}, "Since": since, "Limit": 4})
    assert pages == everything
    assert await store.find({"Level": "Instance", "Query": {}, "Limit": 0}) == everything  # 0 = no limit
    assert await store.find({"Level": "Instance", "Query": {}, "Since": 12}) == everything[12:]
    assert await store.find({"Level": "Instance", "Query": {}, "Since": 99}) == []
    filtered = await store.find({"Level": "Study", "Query": {"Rows": "4"}})
    assert len(filtered) == 10
    assert await store.find({"Level": "Study", "Query": {"Rows": "4"}, "Limit": 3}) == filtered[:3]


async def test_response_content(store: Store) -> None:
    body = {"Level": "Study", "Query": {"PatientID": "P1"}}
    only = await store.find({**body, "ResponseContent": []})
    assert only == [{"ID": store.studies["P1"], "Type": "Study"}]
    some = await store.find({**body, "ResponseContent": ["Parent", "Children", "Labels", "MainDicomTags"],
                             "RequestedTags": ["ModalitiesInStudy"]})
    assert set(some[0]) == {"ID", "Type", "ParentPatient", "Series", "Labels", "MainDicomTags",
                            "PatientMainDicomTags", "RequestedTags"}
    assert some[0]["RequestedTags"] == {"ModalitiesInStudy": "CT\\MR"}
    meta = await store.find({"Level": "Instance", "Query": {"PatientID": "P2"},
                             "ResponseContent": ["Metadata", "Attachments", "Status"]})
    assert meta[0]["Metadata"]["Origin"] == "RestApi"
    assert meta[0]["Attachments"][0]["ContentType"] == 1
    assert set(meta[0]) == {"ID", "Type", "Metadata", "Attachments"}
    series = await store.find({"Level": "Series", "Query": {"PatientID": "P2"}, "ResponseContent": ["Status"]})
    assert set(series[0]) == {"ID", "Type", "Status", "ExpectedNumberOfInstances"}


async def test_count_resources(store: Store) -> None:
    for level, query in (("Study", {}), ("Study", {"PatientName": "doe*"}), ("Instance", {"Modality": "CT"}),
                         ("Study", {"Rows": "16"}), ("Study", {"ModalitiesInStudy": "MR"}), ("Series", {"Modality": "x"})):
        async with store.http.post("/tools/count-resources", json={"Level": level, "Query": query}) as resp:
            assert resp.status == 200
            counted = (await resp.json())["Count"]
        assert counted == len(await store.find({"Level": level, "Query": query})), (level, query)
    answer = await store.error({"Level": "Study", "Query": {}, "CaseSensitive": True}, route="/tools/count-resources")
    assert answer["Uri"] == "/tools/count-resources"
    await store.error({"Level": "Nope", "Query": {}}, route="/tools/count-resources")


# --- configuration ------------------------------------------------------------------------------


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return settings.replace(LimitFindResults=2, LimitFindInstances=3)


async def test_limit_find_results(limited: Settings) -> None:
    async with orthanc_lite.serve(limited, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        store = await upload_store(http)
        # As Orthanc 1.10.1: the database is asked for limit + 1 rows.
        assert len(await store.find({"Level": "Study", "Query": {}})) == 3
        assert len(await store.find({"Level": "Instance", "Query": {}})) == 4
        assert len(await store.find({"Level": "Study", "Query": {}, "Limit": 5})) == 3
        assert len(await store.find({"Level": "Study", "Query": {}, "Limit": 1})) == 1
        assert len(await store.find({"Level": "Study", "Query": {}, "Since": 1})) == 2
        assert len(await store.find({"Level": "Study", "Query": {"PatientName": "doe*"}})) == 2
        async with http.post("/tools/count-resources", json={"Level": "Study", "Query": {}}) as resp:
            assert (await resp.json())["Count"] == 11


@pytest.mark.parametrize("access, rows", [("Never", None), ("Answers", "4")])
async def test_storage_access(settings: Settings, access: str, rows: str | None) -> None:
    async with orthanc_lite.serve(settings.replace(StorageAccessOnFind=access), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        store = await upload_store(http)
        answer = await store.find({"Level": "Study", "Query": {"PatientID": "P1"}, "Expand": True,
                                   "RequestedTags": ["Rows", "PatientName", "ModalitiesInStudy"]})
        assert answer[0]["RequestedTags"] == {"Rows": rows, "PatientName": "Doe^John", "ModalitiesInStudy": "CT\\MR"}
        assert await store.pids("Study", {"Rows": "4"}) == set()  # files may not be read to filter
        assert await store.pids("Study", {"PatientName": "doe*"}) == {"P1", "P2"}


async def test_statements_do_not_grow_with_answers(server: orthanc_lite.Server, store: Store) -> None:
    """One expanded page costs a fixed number of SQL statements (no N+1), whatever its size."""
    stats = server.context.index.engine.statements

    async def cost(body: dict[str, Any]) -> int:
        stats.enabled, stats.count = True, 0
        try:
            await store.find(body)
        finally:
            stats.enabled = False
        return stats.count

    body = {"Level": "Study", "Expand": True, "RequestedTags": ["ModalitiesInStudy", "NumberOfStudyRelatedInstances",
                                                                  "SOPClassesInStudy", "PatientName"]}
    one = await cost({**body, "Query": {"StudyDate": "20240101-"}})
    many = await cost({**body, "Query": {"StudyDate": "19000101-"}})
    assert one == many <= 15, (one, many)
