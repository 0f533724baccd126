"""Attachments (/{level}/{id}/attachments...) over real HTTP: the DICOM file, user attachments, revisions,
HTTP ranges, compression and MD5 checks. Expected answers were recorded from Orthanc 1.10.1.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance

USER_CONTENT_TYPES = {"Mine": (1025, "text/plain"), "Raw": (3000, "")}
OPERATIONS = ["compress", "compressed-data", "compressed-md5", "compressed-size", "data", "info", "is-compressed",
              "md5", "size", "uncompress", "verify-md5", "uuid"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _etag(revision: int, data: bytes) -> str:
    return f'"{revision}-{_md5(data)}"'


@pytest.fixture
def settings(settings: Settings) -> Settings:  # type: ignore[override]
    return settings.replace(UserContentType=USER_CONTENT_TYPES)


async def _serve(settings: Settings) -> AsyncIterator[tuple[orthanc_lite.Server, aiohttp.ClientSession]]:
    async with orthanc_lite.serve(settings, host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as session:
        yield srv, session


@pytest.fixture
async def checked(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    async for _srv, session in _serve(settings.replace(CheckRevisions=True)):
        yield session


@pytest.fixture
async def compressed(settings: Settings) -> AsyncIterator[tuple[orthanc_lite.Server, aiohttp.ClientSession]]:
    async for pair in _serve(settings.replace(StorageCompression=True)):
        yield pair


async def _upload(http: aiohttp.ClientSession, patient: str = "P1") -> tuple[dict, bytes]:
    data = make_instance(patient)
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200
        return await resp.json(), data


def _overwrite(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _stored_files(server: orthanc_lite.Server) -> set[str]:
    return server.context.storage.list_uuids()


# --- the DICOM attachment ---------------------------------------------------------------------------------

async def test_list_and_operations(http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments"
    async with http.get(base) as resp:
        assert await resp.json() == ["dicom"]
    async with http.get(f"{base}?full") as resp:
        assert await resp.json() == {"dicom": 1}
    async with http.get(f"{base}?full=false") as resp:  # checked by presence only
        assert await resp.json() == {"dicom": 1}
    for name in ("dicom", "1"):
        async with http.get(f"{base}/{name}") as resp:
            assert resp.status == 200
            assert await resp.json() == OPERATIONS
            assert resp.headers["ETag"] == _etag(0, data)
    for level in ("patients", "studies", "series"):
        key = {"patients": "ParentPatient", "studies": "ParentStudy", "series": "ParentSeries"}[level]
        async with http.get(f"/{level}/{up[key]}/attachments") as resp:
            assert await resp.json() == []


async def test_dicom_attachment_info_sizes_md5(http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/dicom"
    async with http.get(f"/instances/{up['ID']}") as resp:
        instance = await resp.json()
    async with http.get(f"{base}/info") as resp:
        info = await resp.json()
        assert resp.headers["ETag"] == _etag(0, data)
    assert info == {"Uuid": instance["FileUuid"], "ContentType": 1, "UncompressedSize": len(data),
                    "CompressedSize": len(data), "UncompressedMD5": _md5(data), "CompressedMD5": _md5(data)}
    expected = {"size": str(len(data)), "compressed-size": str(len(data)), "md5": _md5(data),
                "compressed-md5": _md5(data), "is-compressed": "0"}
    for route, text in expected.items():
        async with http.get(f"{base}/{route}") as resp:
            assert resp.status == 200, route
            assert resp.headers["Content-Type"] == "text/plain"
            assert resp.headers["ETag"] == _etag(0, data)
            assert await resp.text() == text, route


async def test_dicom_data(http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/dicom"
    uuid = (await (await http.get(f"{base}/info")).json())["Uuid"]
    async with http.get(f"{base}/data") as resp:
        assert resp.status == 200
        assert await resp.read() == data
        assert resp.headers["Content-Type"] == "application/dicom"
        assert resp.headers["Content-Disposition"] == f'filename="{uuid}.dcm"'
        assert resp.headers["ETag"] == _etag(0, data)
    async with http.get(f"{base}/compressed-data") as resp:
        assert await resp.read() == data
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert "Content-Disposition" not in resp.headers


async def test_range_requests(http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/dicom"
    n = len(data)
    # Orthanc (>= 1.12.5, test_attachment_range): a missing start is 0, so "-10" is bytes 0..10, not a suffix.
    cases = {"bytes=0-9": (0, 9), "bytes=128-131": (128, 131), f"bytes={n - 10}-": (n - 10, n - 1),
             "bytes=-10": (0, 10), f"bytes={n - 1}-{n + 100}": (n - 1, n - 1), "bytes=-100000": (0, n - 1),
             "bytes=-": (0, n - 1), "bytes=-0": (0, 0)}
    for route in ("data", "compressed-data"):
        for header, (start, end) in cases.items():
            async with http.get(f"{base}/{route}", headers={"Range": header}) as resp:
                assert resp.status == 206, header
                assert await resp.read() == data[start:end + 1], header
                assert resp.headers["Content-Range"] == f"bytes {start}-{end}/{n}"
                assert resp.headers["ETag"] == _etag(0, data)
                assert resp.headers["Content-Type"] == "application/octet-stream", header
    for header in (f"bytes={n}-", "bytes=99999999-", "bytes=5-2", "bytes=0-1,4-5", "foo"):
        async with http.get(f"{base}/data", headers={"Range": header}) as resp:
            assert resp.status == 416, header
            assert resp.headers["Content-Range"] == f"bytes */{n}"
            assert (await resp.json())["OrthancStatus"] == 41  # BadRange


async def test_if_none_match(http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/dicom"
    for route in ("", "/data", "/compressed-data", "/size", "/info", "/md5"):
        async with http.get(f"{base}{route}", headers={"If-None-Match": _etag(0, data)}) as resp:
            assert (resp.status, await resp.read()) == (304, b""), route
            assert resp.headers["ETag"] == _etag(0, data)
        async with http.get(f"{base}{route}", headers={"If-None-Match": _etag(1, data)}) as resp:
            assert resp.status == 200, route
    async with http.get(f"{base}/size", headers={"If-None-Match": "nope"}) as resp:
        assert resp.status == 400
        assert resp.headers["ETag"] == _etag(0, data)
        assert (await resp.json())["Details"] == ('The "If-None-Match" HTTP header should contain the ETag '
                                                  "(revision followed by MD5 hash), but found: nope")


async def test_unknown_names_and_resources(http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments"
    async with http.get(f"{base}/nope") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 7  # InexistentItem
    for name in ("Mine", "1025", "dicom-as-json", "2", "dicom-until-pixel-data"):
        async with http.get(f"{base}/{name}/size") as resp:
            assert resp.status == 404, name
            assert (await resp.json())["OrthancStatus"] == 17  # UnknownResource
    async with http.get("/instances/0000/attachments") as resp:
        assert resp.status == 404
    async with http.get("/instances/0000/attachments/dicom/data") as resp:
        assert resp.status == 404
    async with http.get(f"/patients/{up['ID']}/attachments") as resp:  # the list checks the level
        assert resp.status == 404
    async with http.get(f"/patients/{up['ID']}/attachments/dicom/size") as resp:  # one attachment does not
        assert resp.status == 200


async def test_builtin_attachments_are_protected(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments"
    for name in ("dicom", "1", "dicom-as-json", "dicom-until-pixel-data", "500", "1023", "65536"):
        async with http.put(f"{base}/{name}", data=b"x") as resp:
            assert (resp.status, await resp.read()) == (403, b""), name
    for name in ("dicom", "1", "dicom-until-pixel-data", "500", "65536"):
        async with http.delete(f"{base}/{name}") as resp:
            assert (resp.status, await resp.read()) == (403, b""), name
    # The legacy dicom-as-json summary may be deleted (here: it does not exist).
    async with http.delete(f"{base}/dicom-as-json") as resp:
        assert resp.status == 404
    async with http.get(f"{base}/dicom/data") as resp:
        assert await resp.read() == data
    assert len(_stored_files(server)) == 1


# --- user attachments -------------------------------------------------------------------------------------

async def test_put_user_attachments(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments"
    bodies = {"Mine": b"hello attachment", "Raw": b"\x00\x01binary\xff", "4000": b"four"}
    for name, body in bodies.items():
        async with http.put(f"{base}/{name}", data=body) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.read() == b"{}"
            assert resp.headers["ETag"] == _etag(0, body)
    async with http.get(base) as resp:
        assert await resp.json() == ["dicom", "Mine", "Raw", "4000"]  # by number
    async with http.get(f"{base}?full") as resp:
        assert await resp.json() == {"dicom": 1, "Mine": 1025, "Raw": 3000, "4000": 4000}
    mimes = {"Mine": "text/plain", "Raw": "application/octet-stream", "4000": "application/octet-stream"}
    for name, body in bodies.items():
        info = await (await http.get(f"{base}/{name}/info")).json()
        assert info["ContentType"] == {"Mine": 1025, "Raw": 3000, "4000": 4000}[name]
        assert info["UncompressedSize"] == info["CompressedSize"] == len(body)
        assert info["UncompressedMD5"] == info["CompressedMD5"] == _md5(body)
        async with http.get(f"{base}/{name}/data") as resp:
            assert await resp.read() == body
            assert resp.headers["Content-Type"] == mimes[name]
            assert resp.headers["Content-Disposition"] == f'filename="{info["Uuid"]}"'
            assert resp.headers["ETag"] == _etag(0, body)
        async with http.get(f"{base}/{name}") as resp:
            assert await resp.json() == OPERATIONS
    assert len(_stored_files(server)) == 4


async def test_replace_and_delete_remove_old_files(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/Mine"
    await http.put(base, data=b"v1")
    first = (await (await http.get(f"{base}/info")).json())["Uuid"]
    async with http.put(base, data=b"v2") as resp:
        assert resp.headers["ETag"] == _etag(1, b"v2")
    second = (await (await http.get(f"{base}/info")).json())["Uuid"]
    assert first != second
    files = _stored_files(server)
    assert second in files and first not in files
    async with http.get(f"{base}/data") as resp:
        assert await resp.read() == b"v2"
        assert resp.headers["ETag"] == _etag(1, b"v2")
    async with http.delete(base) as resp:
        assert (resp.status, await resp.read()) == (200, b"")
        assert resp.headers["Content-Type"] == "text/plain"
    assert second not in _stored_files(server)
    async with http.get(f"{base}/data") as resp:
        assert resp.status == 404
    async with http.delete(base) as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17


async def test_attachments_on_every_level_and_cascade(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    paths = [f"/patients/{up['ParentPatient']}", f"/studies/{up['ParentStudy']}",
             f"/series/{up['ParentSeries']}", f"/instances/{up['ID']}"]
    for path in paths:
        async with http.put(f"{path}/attachments/Raw", data=path.encode()) as resp:
            assert resp.status == 200
        async with http.get(f"{path}/attachments/Raw/data") as resp:
            assert await resp.read() == path.encode()
    async with http.get(f"/patients/{up['ParentPatient']}/attachments") as resp:
        assert await resp.json() == ["Raw"]
    assert len(_stored_files(server)) == 5
    async with http.get("/statistics") as resp:
        stats = await resp.json()
    assert int(stats["TotalDiskSize"]) == sum(len(p) for p in paths) + len(_data)
    async with http.delete(f"/patients/{up['ParentPatient']}") as resp:
        assert resp.status == 200
    assert _stored_files(server) == set()


async def test_put_on_unknown_resource_leaves_nothing(server: orthanc_lite.Server,
                                                      http: aiohttp.ClientSession) -> None:
    async with http.put("/instances/11111111-11111111-11111111-11111111-11111111/attachments/1025",
                        data=b"hello") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17
    assert _stored_files(server) == set()
    assert os.listdir(server.context.storage.incoming_dir()) == []


async def test_put_finds_the_resource_by_id_alone(http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    async with http.put(f"/series/{up['ID']}/attachments/Raw", data=b"zz") as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{up['ID']}/attachments/Raw/data") as resp:
        assert await resp.read() == b"zz"


async def test_large_attachment_is_streamed(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    body = os.urandom(5 * 1024 * 1024 + 123)  # above the in-memory body limit and the read chunk
    base = f"/instances/{up['ID']}/attachments/Raw"
    async with http.put(base, data=body) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == _etag(0, body)
    async with http.get(f"{base}/data") as resp:
        assert int(resp.headers["Content-Length"]) == len(body)
        assert await resp.read() == body
    async with http.get(f"{base}/data", headers={"Range": "bytes=3000000-3000099"}) as resp:
        assert resp.status == 206
        assert await resp.read() == body[3000000:3000100]
    async with http.get(f"{base}/md5") as resp:
        assert await resp.text() == _md5(body)
    async with http.head(f"{base}/data") as resp:
        assert resp.status == 200
        assert int(resp.headers["Content-Length"]) == len(body)
        assert await resp.read() == b""
    # A client that goes away in the middle of a download does not upset the server.
    async with aiohttp.ClientSession(base_url=server.url) as other:
        resp = await other.get(f"{base}/data")
        assert len(await resp.content.read(1000)) == 1000
        resp.close()
    async with http.get(f"{base}/size") as resp:
        assert await resp.text() == str(len(body))
    assert os.listdir(server.context.storage.incoming_dir()) == []


async def test_empty_attachment(http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/Raw"
    async with http.put(base, data=b"") as resp:
        assert resp.headers["ETag"] == _etag(0, b"")
    async with http.get(f"{base}/data") as resp:
        assert (resp.status, await resp.read()) == (200, b"")
    async with http.get(f"{base}/size") as resp:
        assert await resp.text() == "0"
    async with http.get(f"{base}/data", headers={"Range": "bytes=0-"}) as resp:
        assert resp.status == 416


async def test_updated_attachment_changes(http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/Raw"
    await http.put(base, data=b"1")
    await http.put(base, data=b"2")
    await http.post(f"{base}/compress")
    await http.post(f"{base}/uncompress")
    await http.delete(base)
    await http.put(f"/instances/{up['ID']}/attachments/dicom", data=b"refused")
    async with http.get("/changes?limit=1000") as resp:
        changes = [c for c in (await resp.json())["Changes"] if c["ChangeType"] == "UpdatedAttachment"]
    assert len(changes) == 5
    assert {(c["ResourceType"], c["ID"]) for c in changes} == {("Instance", up["ID"])}


# --- revisions --------------------------------------------------------------------------------------------

async def test_check_revisions(checked: aiohttp.ClientSession) -> None:
    http = checked
    up, data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/Mine"
    async with http.delete(f"/instances/{up['ID']}/attachments/dicom-as-json") as resp:
        assert resp.status == 409  # allowed type, but If-Match is missing
    async with http.delete(base) as resp:
        assert resp.status == 409
        assert (await resp.json())["Details"] == 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'
    async with http.put(base, data=b"hello attachment") as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == _etag(0, b"hello attachment")
    async with http.put(base, data=b"v2") as resp:
        assert resp.status == 409
    async with http.put(base, data=b"v2", headers={"If-Match": "0"}) as resp:
        assert resp.status == 400
    async with http.put(base, data=b"v2", headers={"If-Match": '"0-a"'}) as resp:
        assert resp.status == 409
    async with http.put(base, data=b"v2", headers={"If-Match": _etag(0, b"hello attachment")}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == _etag(1, b"v2")
    async with http.delete(base, headers={"If-Match": _etag(0, b"v2")}) as resp:
        assert resp.status == 409
    async with http.delete(base, headers={"If-Match": _etag(1, b"v2")}) as resp:
        assert resp.status == 200
    async with http.delete(base, headers={"If-Match": _etag(1, b"v2")}) as resp:
        assert resp.status == 404
    async with http.get(f"/instances/{up['ID']}/attachments/dicom/data") as resp:
        assert await resp.read() == data


# --- compression and MD5 ----------------------------------------------------------------------------------

async def test_compress_uncompress_verify(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, data = await _upload(http)
    body = b"four" * 1000
    base = f"/instances/{up['ID']}/attachments/4000"
    await http.put(base, data=body)
    before = await (await http.get(f"{base}/info")).json()
    async with http.post(f"{base}/compress") as resp:
        assert (resp.status, await resp.read()) == (200, b"{}")
        assert resp.headers["Content-Type"] == "application/json"
    info = await (await http.get(f"{base}/info")).json()
    assert info["Uuid"] != before["Uuid"]
    assert info["UncompressedSize"] == len(body) and info["UncompressedMD5"] == _md5(body)
    assert info["CompressedSize"] < len(body) and info["CompressedMD5"] != _md5(body)
    assert await (await http.get(f"{base}/is-compressed")).text() == "1"
    assert await (await http.get(f"{base}/compressed-size")).text() == str(info["CompressedSize"])
    async with http.get(f"{base}/data") as resp:
        assert await resp.read() == body
        assert resp.headers["ETag"] == _etag(1, body)  # the revision went up
    async with http.get(f"{base}/data", headers={"Range": "bytes=10-19"}) as resp:
        assert await resp.read() == body[10:20]
    async with http.get(f"{base}/compressed-data") as resp:
        stored = await resp.read()
    assert len(stored) == info["CompressedSize"] and _md5(stored) == info["CompressedMD5"]
    assert struct.unpack("<Q", stored[:8])[0] == len(body)  # zlib-with-size
    assert zlib.decompress(stored[8:]) == body
    assert before["Uuid"] not in _stored_files(server)
    async with http.post(f"{base}/compress") as resp:  # already compressed: nothing to do
        assert resp.status == 200
    assert (await (await http.get(f"{base}/info")).json())["Uuid"] == info["Uuid"]
    async with http.post(f"{base}/verify-md5") as resp:
        assert (resp.status, await resp.read()) == (200, b"{}")
    async with http.post(f"{base}/uncompress") as resp:
        assert resp.status == 200
    info = await (await http.get(f"{base}/info")).json()
    assert info["CompressedSize"] == len(body) and info["CompressedMD5"] == _md5(body)
    assert await (await http.get(f"{base}/is-compressed")).text() == "0"
    async with http.post(f"{base}/verify-md5") as resp:
        assert resp.status == 200
    # The DICOM attachment may be compressed too (the instance file still comes back whole).
    async with http.post(f"/instances/{up['ID']}/attachments/dicom/compress") as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{up['ID']}/file") as resp:
        assert await resp.read() == data
    async with http.post(f"/instances/{up['ID']}/attachments/5000/compress") as resp:
        assert resp.status == 404


async def test_verify_md5_detects_corruption(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    up, _data = await _upload(http)
    base = f"/instances/{up['ID']}/attachments/Raw"
    await http.put(base, data=b"pristine content")
    async with http.post(f"{base}/verify-md5") as resp:
        assert resp.status == 200
    uuid = (await (await http.get(f"{base}/info")).json())["Uuid"]
    await server.context.executors.run_io(_overwrite, server.context.storage.path(uuid), b"tampered content")
    async with http.post(f"{base}/verify-md5") as resp:
        assert (resp.status, await resp.read()) == (400, b"")
    async with http.post(f"/instances/{up['ID']}/attachments/5000/verify-md5") as resp:  # absent attachment
        assert (resp.status, await resp.read()) == (400, b"")
    async with http.post(f"/instances/{up['ID']}/attachments/nope/verify-md5") as resp:
        assert resp.status == 404


async def test_storage_compression(compressed: tuple[orthanc_lite.Server, aiohttp.ClientSession]) -> None:
    _server, http = compressed
    up, _data = await _upload(http)
    body = b"compress me " * 500
    base = f"/instances/{up['ID']}/attachments/Mine"
    async with http.put(base, data=body) as resp:
        assert resp.headers["ETag"] == _etag(0, body)
    assert await (await http.get(f"{base}/is-compressed")).text() == "1"
    assert await (await http.get(f"/instances/{up['ID']}/attachments/dicom/is-compressed")).text() == "1"
    async with http.get(f"{base}/data") as resp:
        assert await resp.read() == body
    async with http.get(f"{base}/compressed-data") as resp:
        assert zlib.decompress((await resp.read())[8:]) == body
    async with http.get(f"/instances/{up['ID']}/attachments/dicom/data", headers={"Range": "bytes=128-131"}) as resp:
        assert await resp.read() == b"DICM"
    async with http.post(f"{base}/verify-md5") as resp:
        assert resp.status == 200
    async with http.post(f"{base}/uncompress") as resp:
        assert resp.status == 200
    async with http.get(f"{base}/compressed-data") as resp:
        assert await resp.read() == body


async def test_without_md5(settings: Settings) -> None:
    async for _server, http in _serve(settings.replace(StoreMD5ForAttachments=False)):
        up, _data = await _upload(http)
        base = f"/instances/{up['ID']}/attachments/Raw"
        async with http.put(base, data=b"abc") as resp:
            assert resp.headers["ETag"] == _etag(0, b"abc")  # the answer still hashes the body
        info = await (await http.get(f"{base}/info")).json()
        assert info["UncompressedMD5"] == info["CompressedMD5"] == ""
        async with http.get(base) as resp:
            assert resp.headers["ETag"] == '"0-"'
            ops = await resp.json()
        assert "md5" not in ops and "compressed-md5" not in ops and "verify-md5" not in ops
        for route in ("md5", "compressed-md5"):
            async with http.get(f"{base}/{route}") as resp:
                assert (resp.status, await resp.read()) == (404, b"")
        async with http.post(f"{base}/verify-md5") as resp:
            assert resp.status == 400
