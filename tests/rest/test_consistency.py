"""The start-up check repairs a store left inconsistent by a crash: no rows without files, no files without rows."""

from __future__ import annotations

import os
import pathlib
import uuid

import aiohttp

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance


def _storage_files(root: str) -> set[str]:
    return {p.name for p in pathlib.Path(root).rglob("*") if p.is_file() and len(p.name) == 36}


async def test_startup_check_repairs_both_directions(settings: Settings) -> None:
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        kept = await (await http.post("/instances", data=make_instance("KEEP"))).json()
        lost = await (await http.post("/instances", data=make_instance("LOST"))).json()
        async with http.get(f"/instances/{lost['ID']}") as resp:
            lost_uuid = (await resp.json())["FileUuid"]
        async with http.put(f"/patients/{kept['ParentPatient']}/attachments/1025", data=b"user data") as resp:
            assert resp.status == 200
        async with http.get(f"/patients/{kept['ParentPatient']}/attachments/1025/info") as resp:
            user_uuid = (await resp.json())["Uuid"]
        root = srv.context.storage.root
    # "Crash": a file disappears, another appears that no row references.
    os.unlink(os.path.join(root, lost_uuid[:2], lost_uuid[2:4], lost_uuid))
    os.unlink(os.path.join(root, user_uuid[:2], user_uuid[2:4], user_uuid))
    stray = str(uuid.uuid4())
    os.makedirs(os.path.join(root, stray[:2], stray[2:4]), exist_ok=True)
    pathlib.Path(root, stray[:2], stray[2:4], stray).write_bytes(b"orphan")
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.get("/instances") as resp:
            assert await resp.json() == [kept["ID"]]
        async with http.get("/patients") as resp:
            assert await resp.json() == [kept["ParentPatient"]]  # the user attachment's loss kept its patient
        async with http.get(f"/patients/{kept['ParentPatient']}/attachments") as resp:
            assert "1025" not in await resp.json()
        async with http.get(f"/instances/{kept['ID']}") as resp:
            kept_uuid = (await resp.json())["FileUuid"]
        assert _storage_files(root) == {kept_uuid}
