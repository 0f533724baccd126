"""/modalities and /peers configuration compared with real Orthanc 1.10.1 (answers, content types, ?expand,
error details), and DicomModalitiesInDatabase / OrthancPeersInDatabase surviving a restart."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.e2e.orthanc_peer import requires_orthanc, spawn_orthanc


async def _exchange(http: aiohttp.ClientSession, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
    async with http.request(method, path, json=body) as resp:
        text = await resp.text()
        content_type = resp.headers.get("Content-Type", "").split(";")[0]
        return resp.status, content_type, (await resp.json(content_type=None)) if text.strip() else text


SCRIPT: list[tuple[str, str, Any]] = [
    ("PUT", "/modalities/short", ["SHORT", "127.0.0.1", 104]),
    ("PUT", "/modalities/long", {"AET": "LONG", "Host": "h", "Port": 11112, "AllowEcho": False, "Manufacturer": "GE"}),
    ("GET", "/modalities", None),
    ("GET", "/modalities/short/configuration", None),
    ("GET", "/modalities?expand", None),
    ("DELETE", "/modalities/short", None),
    ("DELETE", "/modalities/short", None),
    ("POST", "/modalities/short/echo", {}),
    ("PUT", "/peers/p", {"Url": "http://127.0.0.1:9/", "Username": "u", "Password": "secret"}),
    ("GET", "/peers?expand", None),
    ("GET", "/peers/p/configuration", None),
    ("DELETE", "/peers/p", None),
    ("GET", "/peers", None),
    ("GET", "/jobs/unknown", None),
]


def _drop_new_fields(value: Any) -> Any:
    """RetrieveMethod is newer than 1.10.1 (1.12): compare the rest."""
    if isinstance(value, dict):
        return {k: _drop_new_fields(v) for k, v in value.items() if k != "RetrieveMethod"}
    return value


@pytest.mark.orthanc
@requires_orthanc
async def test_configuration_answers_as_orthanc(server: orthanc_lite.Server, http: aiohttp.ClientSession,
                                                tmp_path: pathlib.Path) -> None:
    orthanc = await asyncio.to_thread(spawn_orthanc, tmp_path / "orthanc", {})
    try:
        async with aiohttp.ClientSession(base_url=orthanc.url) as real:
            for method, path, body in SCRIPT:
                mine = await _exchange(http, method, path, body)
                theirs = await _exchange(real, method, path, body)
                assert mine[0] == theirs[0], (method, path, mine, theirs)
                if mine[0] == 200:
                    assert mine[1] == theirs[1], (method, path)
                    assert _drop_new_fields(mine[2]) == theirs[2], (method, path)
                elif isinstance(theirs[2], dict):
                    assert (mine[2]["OrthancStatus"], mine[2]["Details"]) == \
                        (theirs[2]["OrthancStatus"], theirs[2]["Details"]), (method, path)
    finally:
        await asyncio.to_thread(orthanc.stop)


async def test_modalities_and_peers_in_database(settings: Settings) -> None:
    cfg = settings.replace(DicomModalitiesInDatabase=True, OrthancPeersInDatabase=True,
                           DicomModalities={"fromconfig": ["CFG", "127.0.0.1", 104]})
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        assert (await _exchange(http, "GET", "/modalities"))[2] == []  # the database wins over the configuration
        assert (await _exchange(http, "PUT", "/modalities/kept", {"AET": "KEPT", "Host": "h", "Port": 1,
                                                                   "AllowStore": False}))[0] == 200
        assert (await _exchange(http, "PUT", "/peers/kept", ["http://127.0.0.1:9/", "u", "p"]))[0] == 200
    async with orthanc_lite.serve(cfg, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        modality = (await _exchange(http, "GET", "/modalities/kept/configuration"))[2]
        assert modality["AET"] == "KEPT" and modality["AllowStore"] is False
        peer = (await _exchange(http, "GET", "/peers/kept/configuration"))[2]
        assert peer["Url"] == "http://127.0.0.1:9/" and peer["Username"] == "u" and peer["Password"] is None
