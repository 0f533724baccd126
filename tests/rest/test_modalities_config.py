"""/modalities and /peers: configured, edited over REST, persisted when *InDatabase."""

from __future__ import annotations

import aiohttp

import orthanc_lite
from orthanc_lite.config import Settings


async def test_modalities_crud(settings: Settings) -> None:
    cfg = settings.replace(DicomModalities={"sample": ["STORESCP", "127.0.0.1", 2000]})
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.get("/modalities") as resp:
            assert await resp.json() == ["sample"]
        async with http.get("/modalities?expand") as resp:
            sample = (await resp.json())["sample"]
        assert sample["AET"] == "STORESCP" and sample["Port"] == 2000 and sample["AllowEcho"] is True
        assert sample["Manufacturer"] == "Generic" and sample["LocalAet"] == "" and sample["Timeout"] == 0
        async with http.put("/modalities/pacs", json={"AET": "PACS", "Host": "127.0.0.1", "Port": "104",
                                                      "AllowStore": False}) as resp:
            assert resp.status == 200
        async with http.get("/modalities/pacs/configuration") as resp:
            pacs = await resp.json()
        assert pacs["Port"] == 104 and pacs["AllowStore"] is False
        async with http.put("/modalities/bad%20name", json=["A", "h", 1]) as resp:
            assert resp.status == 400
        async with http.delete("/modalities/pacs") as resp:
            assert resp.status == 200
        async with http.delete("/modalities/nope") as resp:
            assert resp.status == 404
            err = await resp.json()
        assert err["OrthancStatus"] == 7 and err["Details"] == "Unknown DICOM modality with symbolic name: nope"


async def test_peers_and_persistence(settings: Settings) -> None:
    cfg = settings.replace(OrthancPeersInDatabase=True)
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.put("/peers/other", json={"Url": "http://127.0.0.1:9/", "Username": "u", "Password": "p",
                                                  "HttpHeaders": {"X-Token": "secret"}}) as resp:
            assert resp.status == 200
        async with http.get("/peers?expand") as resp:
            other = (await resp.json())["other"]
        assert other["Password"] is None and other["HttpHeaders"] == ["X-Token"] and other["Username"] == "u"
        async with http.delete("/peers/nope") as resp:
            assert resp.status == 404
    # Restarted on the same storage: the peer is still there.
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.get("/peers") as resp:
            assert await resp.json() == ["other"]
