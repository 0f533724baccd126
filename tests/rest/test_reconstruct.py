"""POST /{level}/{id}/reconstruct and /tools/reconstruct: main tags recomputed from the stored files."""

from __future__ import annotations

import pathlib
import sqlite3

import aiohttp

from tests.conftest import testdata, upload


async def test_reconstruct_restores_main_tags(http: aiohttp.ClientSession, settings) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    db = pathlib.Path(settings.index_directory) / "index"
    # What an older version (or another MainDicomTags configuration) left in the index.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE resources SET main_tags='{}' WHERE public_id IN (?,?)",
                     (stored["ParentStudy"], stored["ParentSeries"]))
    async with http.get(f"/studies/{stored['ParentStudy']}") as resp:
        assert (await resp.json())["MainDicomTags"] == {}
    async with http.post(f"/studies/{stored['ParentStudy']}/reconstruct", json={}) as resp:
        assert resp.status == 200 and await resp.text() == ""  # as Orthanc: an empty answer
    async with http.get(f"/studies/{stored['ParentStudy']}") as resp:
        study = await resp.json()
    assert study["MainDicomTags"]["StudyInstanceUID"]
    assert study["PatientMainDicomTags"]["PatientID"]
    async with http.get(f"/series/{stored['ParentSeries']}") as resp:
        assert (await resp.json())["MainDicomTags"]["Modality"]
    async with http.post("/tools/reconstruct", data=b"") as resp:
        assert resp.status == 200
    async with http.post("/studies/00000000-00000000-00000000-00000000-00000000/reconstruct", json={}) as resp:
        assert resp.status == 404


async def test_reconstruct_files_applies_storage_compression(settings) -> None:
    """ReconstructFiles rewrites the attachments as the configuration now asks: stored uncompressed, then
    reconstructed under StorageCompression, the file is compressed and reads back the same."""
    import orthanc_lite
    plain = settings.replace(StorageCompression=False)
    async with orthanc_lite.serve(plain, host="127.0.0.1") as srv, aiohttp.ClientSession(base_url=srv.url) as http:
        stored = await upload(http, testdata("PrivateTags.dcm"))
        async with http.get(f"/instances/{stored['ID']}/file") as resp:
            original = await resp.read()
    async with orthanc_lite.serve(settings.replace(StorageCompression=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as http:
        async with http.post(f"/patients/{stored['ParentPatient']}/reconstruct",
                             json={"ReconstructFiles": True}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.get(f"/instances/{stored['ID']}/attachments/dicom/is-compressed") as resp:
            assert await resp.text() == "1"
        async with http.get(f"/instances/{stored['ID']}/file") as resp:
            assert await resp.read() == original
