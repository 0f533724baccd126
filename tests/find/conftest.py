"""A small store of generated studies for the search tests, uploaded over real HTTP.

Every study has its own patient; tests name studies by PatientID ("P1", ...). The DICOM files are built once
per session (fixed UIDs), so real Orthanc can be given the very same files (tests/find/test_find_orthanc.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance

# PatientID -> study attributes and series (modality, number of instances, extra tags of the instances).
STUDIES: dict[str, dict[str, Any]] = {
    "P1": {"name": "Doe^John", "date": "20240102", "series": [("CT", 2, {}), ("MR", 1, {})],
           "tags": {"InstitutionName": "Hospital A", "AccessionNumber": "ACC-1"}},
    "P2": {"name": "doe^jane", "date": "20230510", "series": [("MR", 1, {})], "tags": {"AccessionNumber": "acc-2"}},
    "P3": {"name": "Élodie^Martin", "date": "20220101", "series": [("US", 1, {})], "tags": {}},
    "P4": {"name": "O'Brien^Pat", "date": "20210101", "series": [("CT", 1, {})], "tags": {}},
    "P5": {"name": "100%_sure", "date": "20200101", "series": [("CT", 1, {})], "tags": {}},
    "P6": {"name": "star*name", "date": "20190101", "series": [("CT", 1, {})], "tags": {"InstitutionName": "Hôpital"}},
    "p7": {"name": "élodie^martin", "date": "20180101", "series": [("CT", 1, {})], "tags": {"InstitutionName": "hôpital"}},
    "P8": {"name": "back\\slash", "date": "20170101", "series": [("PT", 1, {"Rows": 16, "Columns": 16})], "tags": {}},
    "P9": {"name": "under_score", "date": "20160101", "series": [("CR", 1, {})], "tags": {"StudyDescription": "[brackets]"}},
    "P10": {"name": "100x_surely", "date": "", "series": [("CT", 1, {})], "tags": {}},
    "P11": {"name": "Robert'); DROP TABLE resources;--", "date": "20150101", "series": [("MR", 1, {})], "tags": {}},
}


@dataclass
class File:
    patient_id: str
    data: bytes


@functools.cache
def sample_files() -> tuple[File, ...]:
    """The DICOM files of STUDIES, built once (fixed UIDs: the same public IDs on every server)."""
    files: list[File] = []
    for s, (pid, spec) in enumerate(STUDIES.items(), start=1):
        study_uid = f"1.2.826.0.1.3680043.10.543.{s}"
        for n, (modality, count, extra) in enumerate(spec["series"], start=1):
            series_uid = f"{study_uid}.{n}"
            for i in range(1, count + 1):
                tags = {**spec["tags"], **extra, "SeriesNumber": n}
                files.append(File(pid, make_instance(
                    pid, spec["name"], study_uid=study_uid, series_uid=series_uid, sop_uid=f"{series_uid}.{i}",
                    modality=modality, study_date=spec["date"], instance_number=i, size=4, **tags)))
    return tuple(files)


@dataclass
class Store:
    """The uploaded store: public IDs by PatientID, and helpers to query /tools/find."""

    http: aiohttp.ClientSession
    patients: dict[str, str] = field(default_factory=dict)            # PatientID -> patient public id
    studies: dict[str, str] = field(default_factory=dict)             # PatientID -> study public id
    series: dict[str, list[str]] = field(default_factory=dict)        # PatientID -> series public ids
    instances: dict[str, list[str]] = field(default_factory=dict)     # PatientID -> instance public ids

    def owner(self, public_id: str) -> str:
        for pid in STUDIES:
            if public_id in (self.patients[pid], self.studies[pid], *self.series[pid], *self.instances[pid]):
                return pid
        raise KeyError(public_id)

    async def find(self, body: dict[str, Any], status: int = 200) -> Any:
        async with self.http.post("/tools/find", json=body) as resp:
            answer = await resp.json()
            assert resp.status == status, answer
            return answer

    async def pids(self, level: str, query: dict[str, str], **extra: Any) -> set[str]:
        """The PatientIDs owning the matches (a set: tests of matching rules ignore the order)."""
        answer = await self.find({"Level": level, "Query": query, **extra})
        return {self.owner(i) for i in answer}

    async def error(self, body: Any, status: int = 400, route: str = "/tools/find") -> dict[str, Any]:
        async with self.http.post(route, data=body if isinstance(body, (bytes, str)) else None,
                                  json=None if isinstance(body, (bytes, str)) else body) as resp:
            answer = await resp.json()
            assert resp.status == status, answer
            return answer  # type: ignore[no-any-return]


async def upload_store(http: aiohttp.ClientSession) -> Store:
    store = Store(http)
    for f in sample_files():
        async with http.post("/instances", data=f.data) as resp:
            assert resp.status == 200, await resp.text()
            answer = await resp.json()
        store.patients[f.patient_id] = answer["ParentPatient"]
        store.studies[f.patient_id] = answer["ParentStudy"]
        store.series.setdefault(f.patient_id, [])
        if answer["ParentSeries"] not in store.series[f.patient_id]:
            store.series[f.patient_id].append(answer["ParentSeries"])
        store.instances.setdefault(f.patient_id, []).append(answer["ID"])
    return store


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings without the DICOM server, which these tests do not use (it costs ~1 s per test)."""
    return settings.replace(DicomServerEnabled=False)


@pytest.fixture
async def store(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> Store:
    return await upload_store(http)
