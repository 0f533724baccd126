"""Same answers as real Orthanc: the same files in both servers, the same /tools/find queries, the same result sets.

Runs when /usr/sbin/Orthanc exists (Debian's Orthanc 1.10.1), and only for what 1.10.1 supports (no labels,
RequestedTags, OrderBy, MetadataQuery, ResponseContent or count-resources). Orthanc returns matches in an
order that depends on its SQL plan, so results are compared as sets; Limit/Since are compared by size.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import all_testdata_files
from tests.e2e.orthanc_peer import (
    ORTHANC_AVAILABLE,
    SKIP_REASON,
    ServerProcess,
    start_orthanc,
)
from tests.find.conftest import STUDIES, sample_files

pytestmark = [pytest.mark.orthanc, pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)]

LEVELS = ("Patient", "Study", "Series", "Instance")

# Queries on the generated studies (tests/find/conftest.py), at every level.
QUERIES: list[dict[str, str]] = [
    {}, {"PatientName": "Doe^John"}, {"PatientName": "DOE^JOHN"}, {"PatientName": "o'brien*"}, {"PatientName": "doe*"},
    {"PatientName": "D?E^J*"}, {"PatientName": "*^*"}, {"PatientName": "*"}, {"PatientName": ""},
    {"PatientName": "élodie*"}, {"PatientName": "ÉLODIE^MARTIN"}, {"PatientName": "ELODIE*"},
    {"PatientName": "O'Brien^Pat"}, {"PatientName": "*'*"}, {"PatientName": "100%_sure"}, {"PatientName": "100%*"},
    {"PatientName": "100_*"}, {"PatientName": "100?_sure*"}, {"PatientName": "*_*"}, {"PatientName": "*%*"},
    {"PatientName": "star*name"}, {"PatientName": "star?name"}, {"PatientName": "*\\*"}, {"PatientName": "back\\slash"},
    {"PatientName": "Robert'); DROP TABLE resources;--"}, {"PatientName": "*; DROP*"},
    {"PatientID": "p*"}, {"PatientID": "P1"}, {"PatientID": "P1\\P4\\nope"}, {"AccessionNumber": "ACC-2"},
    {"InstitutionName": "hospital a"}, {"InstitutionName": "hôpital"}, {"InstitutionName": "HÔPITAL"},
    {"InstitutionName": "H?ELLO"}, {"StudyDate": "20200101-20221231"}, {"StudyDate": "2020*-"}, {"StudyDate": "20230101-"},
    {"StudyDate": "-20160101"}, {"StudyDate": "20240102"}, {"StudyDate": "20240102\\20150101"},
    {"StudyDate": "20200101-20221231\\20240102"}, {"StudyDate": "-"}, {"PatientName": "doe*", "StudyDate": "20240101-"},
    {"ModalitiesInStudy": "MR"}, {"ModalitiesInStudy": "mr\\us"}, {"ModalitiesInStudy": "C?"},
    {"ModalitiesInStudy": "U*\\M*"}, {"Modality": "CT"}, {"Modality": "CT", "PatientName": "doe*"},
    {"Modality": "mr", "StudyDate": "20240101-"}, {"StudyInstanceUID": "1.2*\\1.3"}, {"ModalitiesInStudy": "*"},
    {"ModalitiesInStudy": "MR\\*"}, {"SeriesNumber": "1"}, {"InstanceNumber": "2"},
    {"StudyDescription": "[brackets]"}, {"StudyDescription": "[*"}, {"StudyDescription": "*]"},
    {"SOPInstanceUID": "1.2.826.0.1.3680043.10.543.2.1.1"}, {"SeriesInstanceUID": "1.2.826.0.1.3680043.10.543.1.2"},
    {"StudyInstanceUID": "1.2.826.0.1.3680043.10.543.3"}, {"StudyInstanceUID": "1.2.826.0.1.3680043.10.543.3\\x"},
    {"Rows": "16"}, {"Rows": "16", "PatientName": "nope"}, {"PatientSex": "M"}, {"PatientBirthDate": "19700101-"},
    {"StudyTime": "100000-110000"}, {"StudyTime": "-090000"},
]


@pytest.fixture
def orthanc(tmp_path: pathlib.Path) -> Iterator[ServerProcess]:
    with start_orthanc(tmp_path / "orthanc", {"LimitFindResults": 0, "LimitFindInstances": 0}) as proc:
        yield proc


async def _upload_everywhere(lite: aiohttp.ClientSession, orthanc: aiohttp.ClientSession) -> None:
    blobs = [f.data for f in sample_files()] + [p.read_bytes() for p in all_testdata_files()]
    for data in blobs:
        async with orthanc.post("/instances", data=data) as resp:
            await resp.read()
            if resp.status != 200:
                continue  # a file real Orthanc refuses is left out of both stores
        async with lite.post("/instances", data=data) as resp:
            assert resp.status == 200, await resp.text()


async def _find(http: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post("/tools/find", json=body) as resp:
        raw = await resp.read()
        return resp.status, orjson.loads(raw) if raw else {"OrthancStatus": None}


async def _data_driven_queries(lite: aiohttp.ClientSession,
                                real: aiohttp.ClientSession) -> list[tuple[str, dict[str, str]]]:
    """Exact values and wildcards built from the main tags stored by both servers (the shared test files included).

    Only values that both servers decoded identically are used (decoding is compared elsewhere).
    """
    out: list[tuple[str, dict[str, str]]] = []
    for level, path, tags in (("Patient", "patients", ("PatientName", "PatientID", "PatientBirthDate")),
                              ("Study", "studies", ("StudyDate", "AccessionNumber", "StudyDescription")),
                              ("Series", "series", ("Modality", "SeriesDescription", "BodyPartExamined")),
                              ("Instance", "instances", ("InstanceNumber",))):
        listings = []
        for session in (lite, real):
            async with session.get(f"/{path}?expand") as resp:
                listings.append({r["ID"]: {**r.get("PatientMainDicomTags", {}), **r["MainDicomTags"]}
                                 for r in await resp.json()})
        ours, theirs = listings
        for rid, tags_of in ours.items():
            for tag in tags:
                value = tags_of.get(tag)
                if not value or "\\" in value or theirs.get(rid, {}).get(tag) != value:
                    continue
                out.append((level, {tag: value}))
                if tag in ("PatientName", "PatientID", "StudyDescription", "SeriesDescription", "Modality"):
                    out.append((level, {tag: value[:2].lower() + "*"}))
                    out.append(("Study" if level == "Patient" else level, {tag: "*" + value[-2:]}))
    return list({repr(q): q for q in out}.values())[:150]


async def _disagreements(lite: aiohttp.ClientSession, real: aiohttp.ClientSession) -> set[str]:
    """Resources whose stored main tags differ between the servers (DICOM decoding differences, tested elsewhere),
    with their descendants: matching is compared on the others only."""
    bad: set[str] = set()
    children: dict[str, list[str]] = {}
    for path in ("patients", "studies", "series", "instances"):
        listings = []
        for session in (lite, real):
            async with session.get(f"/{path}?expand") as resp:
                listings.append({r["ID"]: r for r in await resp.json()})
        ours, theirs = listings
        for rid, resource in ours.items():
            other = theirs.get(rid, {})
            for key in ("MainDicomTags", "PatientMainDicomTags"):
                mine, yours = resource.get(key, {}), other.get(key, {})
                # (1.12.5 added main tags that 1.10.1 does not store: only common tags are compared)
                if any(mine[tag] != yours[tag] for tag in set(mine) & set(yours)):
                    bad.add(rid)
            children[rid] = resource.get("Studies", resource.get("Series", resource.get("Instances", [])))
    pending = list(bad)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in bad:
                bad.add(child)
                pending.append(child)
    return bad


async def test_same_result_sets_as_orthanc(http: aiohttp.ClientSession, orthanc: ServerProcess) -> None:
    async with aiohttp.ClientSession(base_url=orthanc.url) as real:
        await _upload_everywhere(http, real)
        ignored = await _disagreements(http, real)
        queries = [(level, q) for level in LEVELS for q in QUERIES] + await _data_driven_queries(http, real)
        mismatches = []
        for level, query in queries:
            for case_sensitive in (False, True):
                body = {"Level": level, "Query": query, "CaseSensitive": case_sensitive}
                ours, theirs = await _find(http, body), await _find(real, body)
                if ours[0] != theirs[0]:
                    mismatches.append((body, ours, theirs))
                elif ours[0] == 200 and set(ours[1]) - ignored != set(theirs[1]) - ignored:
                    mismatches.append((body, sorted(set(ours[1]) - set(theirs[1])), sorted(set(theirs[1]) - set(ours[1]))))
                elif ours[0] != 200 and ours[1]["OrthancStatus"] != theirs[1]["OrthancStatus"]:
                    mismatches.append((body, ours[1], theirs[1]))
        assert not mismatches, "\n".join(map(repr, mismatches[:20]))
        assert len(queries) > 300 and len(ignored) < 20


_COMPARED_KEYS = ("ID", "Type", "MainDicomTags", "PatientMainDicomTags", "ParentPatient", "ParentStudy",
                  "ParentSeries", "Status", "ExpectedNumberOfInstances", "IndexInSeries", "FileSize")


def _comparable(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({k: i[k] for k in _COMPARED_KEYS if k in i} for i in items), key=repr)


async def test_same_expanded_answers_and_paging(http: aiohttp.ClientSession, orthanc: ServerProcess) -> None:
    async with aiohttp.ClientSession(base_url=orthanc.url) as real:
        await _upload_everywhere(http, real)
        for level in LEVELS:
            for fmt in ({}, {"Short": True}, {"Full": True}):
                body = {"Level": level, "Query": {"PatientID": "P1"}, "Expand": True, **fmt}
                ours, theirs = (await _find(http, body))[1], (await _find(real, body))[1]
                assert _comparable(ours) == _comparable(theirs), body
                for key in ("Studies", "Series", "Instances"):
                    assert sorted(sorted(i.get(key, [])) for i in ours) == sorted(sorted(i.get(key, [])) for i in theirs)
        for level in LEVELS:
            total = len((await _find(real, {"Level": level, "Query": {}}))[1])
            for since, limit in ((0, 3), (2, 5), (total - 1, 10), (total + 5, 2), (1, 0)):
                body = {"Level": level, "Query": {}, "Since": since, "Limit": limit}
                assert len((await _find(http, body))[1]) == len((await _find(real, body))[1]), body


async def test_same_errors_as_orthanc(http: aiohttp.ClientSession, orthanc: ServerProcess) -> None:
    bodies: list[Any] = [
        {"Query": {}}, {"Level": 1, "Query": {}}, {"Level": "Study"}, {"Level": "Foo", "Query": {}},
        {"Level": "Study", "Query": {"PatientName": 1}}, {"Level": "Study", "Query": {}, "Limit": -1},
        {"Level": "Study", "Query": {}, "Limit": "1"}, {"Level": "Study", "Query": {}, "Since": 1.5},
        {"Level": "Study", "Query": {}, "CaseSensitive": 1}, {"Level": "Study", "Query": {"StudyDate": "2020*"}},
        {"Level": "Series", "Query": {"SeriesNumber": "1*"}}, {"Level": "Study", "Query": {"StudyTime": "10*"}},
        [1], "not json",
    ]
    async with aiohttp.ClientSession(base_url=orthanc.url) as real:
        for body in bodies:
            answers = []
            for session in (http, real):
                kwargs = {"data": body} if isinstance(body, str) else {"json": body}
                async with session.post("/tools/find", **kwargs) as resp:
                    raw = await resp.read()
                    answers.append((resp.status, orjson.loads(raw)["OrthancStatus"] if raw else None))
            assert answers[0] == answers[1], (body, answers)
    assert len(STUDIES) == 11
