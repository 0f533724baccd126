"""ReadOnly mode: the write routes are not registered, reads still work."""

from __future__ import annotations

import aiohttp

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance


async def test_read_only_mode(settings: Settings) -> None:
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        answer = await (await http.post("/instances", data=make_instance("RO"))).json()
    async with orthanc_lite.serve(settings.replace(ReadOnly=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.post("/instances", data=make_instance("RO2")) as resp:
            assert resp.status in (404, 405)
        async with http.delete(f"/instances/{answer['ID']}") as resp:
            assert resp.status in (404, 405)
        async with http.put(f"/instances/{answer['ID']}/labels/x") as resp:
            assert resp.status in (404, 405)
        async with http.get(f"/instances/{answer['ID']}") as resp:
            assert resp.status == 200
        async with http.post("/tools/find", json={"Level": "Instance", "Query": {}}) as resp:
            assert await resp.json() == [answer["ID"]]
        async with http.get("/system") as resp:
            assert (await resp.json())["ReadOnly"] is True


async def test_method_faking(http: aiohttp.ClientSession) -> None:
    answer = await (await http.post("/instances", data=make_instance("FAKE"))).json()
    async with http.post(f"/instances/{answer['ID']}/labels/x", headers={"X-HTTP-Method-Override": "PUT"}) as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{answer['ID']}/labels") as resp:
        assert await resp.json() == ["x"]
    async with http.get(f"/instances/{answer['ID']}?_method=delete") as resp:
        assert resp.status == 200
        assert (await resp.json())["RemainingAncestor"] is None
    async with http.get("/instances") as resp:
        assert await resp.json() == []


async def test_trailing_slash_and_405(http: aiohttp.ClientSession) -> None:
    async with http.get("/system/") as resp:
        assert resp.status == 200
    async with http.delete("/system") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"
    async with http.get("/changes?limit=abc") as resp:  # Orthanc falls back to the defaults (checked with 1.10.1)
        assert resp.status == 200
        assert (await resp.json())["Done"] is True
