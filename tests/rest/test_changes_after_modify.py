"""Modifying or anonymizing a study logs the New* changes of the resources it creates and no
Modified*/Anonymized* change (ChangeType 6-11 exist but Orthanc's ResourceModificationJob never logs them),
as real Orthanc does."""

from __future__ import annotations

import collections
import os
import pathlib

import aiohttp
import pytest

from tests.conftest import ORTHANC_BIN, testdata, upload
from tests.e2e.orthanc_peer import start_orthanc

NEVER_LOGGED = {"ModifiedPatient", "ModifiedStudy", "ModifiedSeries",
                "AnonymizedPatient", "AnonymizedStudy", "AnonymizedSeries"}


async def _modify_then_changes(http: aiohttp.ClientSession) -> collections.Counter[str]:
    study = (await upload(http, testdata("Series", "Lena-1.dcm")))["ParentStudy"]
    for route, body in (("modify", {"Replace": {"StudyDescription": "Changed"}, "Force": True}), ("anonymize", {})):
        async with http.post(f"/studies/{study}/{route}", json=body) as resp:
            assert resp.status == 200, await resp.text()
    async with http.get("/changes", params={"limit": "1000"}) as resp:
        changes = (await resp.json())["Changes"]
    # Stable* changes depend on StableAge and timing: not compared.
    return collections.Counter(c["ChangeType"] for c in changes if not c["ChangeType"].startswith("Stable"))


async def test_no_modified_or_anonymized_change(http: aiohttp.ClientSession) -> None:
    counts = await _modify_then_changes(http)
    assert not NEVER_LOGGED & set(counts)
    # The original, the modified and the anonymized study; the modified one keeps its patient.
    assert counts == {"NewInstance": 3, "NewSeries": 3, "NewStudy": 3, "NewPatient": 2}


@pytest.mark.orthanc
@pytest.mark.skipif(not os.path.exists(ORTHANC_BIN), reason="real Orthanc is not installed")
async def test_same_changes_as_real_orthanc(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    ours = await _modify_then_changes(http)
    with start_orthanc(tmp_path / "orthanc") as orthanc:
        async with aiohttp.ClientSession(base_url=orthanc.url) as real:
            theirs = await _modify_then_changes(real)
    assert ours == theirs
