"""POST /instances as Orthanc Explorer sends it (Tests.py test_upload_multipart_1 and _2): several files in one
multipart/form-data body with whitespace-padded headers, and jQuery File Upload's chunked mode."""

from __future__ import annotations

import pathlib

import aiohttp
import pytest
import requests

from tests.conftest import testdata
from tests.data.make_samples import make_instance
from tests.e2e.orthanc_peer import ORTHANC_AVAILABLE, SKIP_REASON, start_orthanc

BOUNDARY = "----WebKitFormBoundarypJDNQqJPoXiorRmQ"


def padded_part(data: bytes, filename: str) -> bytes:
    """A part as in Orthanc's suite: spaces around ':', ';' and '=', no Content-Type."""
    return (f'--{BOUNDARY}\r\nContent-Disposition  :   form-data  ; name ="files[]"   ; filename = "{filename}"  '
            f"\r\n\r\n").encode() + data + b"\r\n"


def chunk_body(data: bytes, filename: str) -> bytes:
    """One jQuery File Upload chunk: ends with "--boundary" and no closing "--"."""
    return (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files[]"; filename="{filename}"\r\n'
            f"\r\n").encode() + data + f"\r\n--{BOUNDARY}".encode()


async def count_instances(http: aiohttp.ClientSession) -> int:
    async with http.get("/instances") as resp:
        return len(await resp.json())


async def test_several_files_with_padded_headers(http: aiohttp.ClientSession) -> None:
    first, second = make_instance("MP1"), make_instance("MP2")
    body = padded_part(first, "a.dcm") + padded_part(second, "b.dcm") + f"--{BOUNDARY}--".encode()
    headers = {"Content-Type": f"multipart/form-data   ;    boundary  =  {BOUNDARY}  ",
               "X-Requested-With": "XMLHttpRequest"}
    async with http.post("/instances", data=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.read() == b""  # Orthanc answers an empty body to form uploads
    assert await count_instances(http) == 2
    async with http.post("/tools/find", json={"Level": "Patient", "Query": {}, "Expand": True}) as resp:
        patients = {p["MainDicomTags"]["PatientID"] for p in await resp.json()}
    assert patients == {"MP1", "MP2"}


async def test_chunked_upload(http: aiohttp.ClientSession) -> None:
    dcm = testdata("ColorTestMalaterre.dcm").read_bytes()
    other = make_instance("WHOLE")

    def headers(name: str, size: int) -> dict[str, str]:
        return {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "X-Requested-With": "XMLHttpRequest",
                "X-File-Name": name, "X-File-Size": str(size)}

    for chunk in (dcm[:1000], dcm[1000:2000]):
        async with http.post("/instances", data=chunk_body(chunk, "c.dcm"), headers=headers("c.dcm", len(dcm))) as r:
            assert r.status == 200, await r.text()
        assert await count_instances(http) == 0  # incomplete: nothing stored yet
    # Another file, complete in one request, while the first one is still in progress.
    async with http.post("/instances", data=chunk_body(other, "w.dcm"), headers=headers("w.dcm", len(other))) as r:
        assert r.status == 200
    assert await count_instances(http) == 1
    async with http.post("/instances", data=chunk_body(dcm[2000:], "c.dcm"), headers=headers("c.dcm", len(dcm))) as r:
        assert r.status == 200
    assert await count_instances(http) == 2
    async with http.get("/instances?expand") as resp:
        instances = await resp.json()
    stored = next(i for i in instances if i["FileSize"] == len(dcm))
    async with http.get(f"/instances/{stored['ID']}/file") as resp:
        assert await resp.read() == dcm  # the chunks were assembled in order, byte for byte
    # A chunk beyond the announced size is refused, and the upload forgotten.
    async with http.post("/instances", data=chunk_body(dcm[:100], "x.dcm"), headers=headers("x.dcm", 50)) as r:
        assert r.status == 400


async def test_large_part_is_spooled(http: aiohttp.ClientSession) -> None:
    big = make_instance("BIG", size=1600)  # ~5 MB of pixels: above the in-memory body limit
    assert len(big) > 4 * 1024 * 1024
    body = padded_part(make_instance("SMALL"), "s.dcm") + padded_part(big, "big.dcm") + f"--{BOUNDARY}--".encode()
    async with http.post("/instances", data=body,
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}) as resp:
        assert resp.status == 200, await resp.text()
    async with http.get("/instances?expand") as resp:
        sizes = sorted(i["FileSize"] for i in await resp.json())
    assert sizes[-1] == len(big) and len(sizes) == 2


async def test_bad_form_uploads(http: aiohttp.ClientSession) -> None:
    async with http.post("/instances", data=b"--x\r\n", headers={"Content-Type": "multipart/form-data"}) as resp:
        assert resp.status == 400  # no boundary
    async with http.post("/instances", data=padded_part(b"not dicom", "n.dcm") + f"--{BOUNDARY}--".encode(),
                         headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}) as resp:
        assert resp.status == 400
    assert await count_instances(http) == 0


@pytest.mark.orthanc
@pytest.mark.skipif(not ORTHANC_AVAILABLE, reason=SKIP_REASON)
async def test_same_answer_as_real_orthanc(http: aiohttp.ClientSession, tmp_path: pathlib.Path) -> None:
    files = [testdata("ColorTestMalaterre.dcm").read_bytes(), testdata("SignedCT.dcm").read_bytes()]
    body = padded_part(files[0], "a.dcm") + padded_part(files[1], "b.dcm") + f"--{BOUNDARY}--".encode()
    headers = {"Content-Type": f"multipart/form-data   ;    boundary  =  {BOUNDARY}  ",
               "X-Requested-With": "XMLHttpRequest"}
    with start_orthanc(tmp_path / "orthanc") as peer:
        theirs = requests.post(peer.url + "/instances", data=body, headers=headers, timeout=30)
        their_ids = sorted(requests.get(peer.url + "/instances", timeout=30).json())
    async with http.post("/instances", data=body, headers=headers) as resp:
        assert (resp.status, await resp.read()) == (theirs.status_code, theirs.content)
    async with http.get("/instances") as resp:
        assert sorted(await resp.json()) == their_ids
