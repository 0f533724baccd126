"""List endpoints cost a fixed number of SQL statements, whatever the number of resources (no N+1)."""

from __future__ import annotations

import aiohttp
import pytest

import orthanc_lite
from tests.data.make_samples import make_series


async def _count(server: orthanc_lite.Server, http: aiohttp.ClientSession, path: str) -> int:
    stats = server.context.index.engine.statements
    stats.enabled, stats.count = True, 0
    try:
        async with http.get(path) as resp:
            assert resp.status == 200
            await resp.read()
    finally:
        stats.enabled = False
    return stats.count


@pytest.mark.parametrize("path", ["/studies?expand", "/series?expand", "/instances?expand", "/patients?expand",
                                  "/instances", "/studies?expand&since=0&limit=100"])
async def test_list_cost_does_not_grow_with_size(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                 path: str) -> None:
    for data in make_series(2, patient_id="A"):
        await http.post("/instances", data=data)
    small = await _count(server, http, path)
    for p in range(6):
        for data in make_series(3, patient_id=f"B{p}"):
            await http.post("/instances", data=data)
    large = await _count(server, http, path)
    assert small == large, f"{path}: {small} statements for 1 patient, {large} for 7"
    assert large <= 12


async def test_children_route_cost_is_fixed(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    answers = [await (await http.post("/instances", data=d)).json() for d in make_series(2, patient_id="C")]
    study = answers[0]["ParentStudy"]
    small = await _count(server, http, f"/studies/{study}/instances")
    more = make_series(8, patient_id="C", study_uid=None)
    for d in more:
        await http.post("/instances", data=d)
    patient = answers[0]["ParentPatient"]
    assert await _count(server, http, f"/patients/{patient}/instances") == small


async def test_upload_statements_are_counted_and_fixed(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    """An upload into an existing series costs the same few statements (the store transaction has no N+1)."""
    first, second, third = make_series(3, patient_id="W")
    assert (await http.post("/instances", data=first)).status == 200
    stats = server.context.index.engine.statements
    costs = []
    for data in (second, third):
        stats.enabled, stats.count = True, 0
        try:
            assert (await http.post("/instances", data=data)).status == 200
        finally:
            stats.enabled = False
        costs.append(stats.count)
    assert costs[0] == costs[1] and 5 <= costs[0] <= 14, costs
    stats.count = 0
    for data in make_series(2, patient_id="X"):
        assert (await http.post("/instances", data=data)).status == 200
    assert stats.count == 0  # counted only while enabled
