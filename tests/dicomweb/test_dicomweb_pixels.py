"""DICOMweb over the pixel module: frames, rendered, thumbnail, transcoded retrieve, WADO-URI images
(behaviours of Orthanc's Plugins/DicomWeb/Run.py on the shared test files)."""

from __future__ import annotations

import io

import aiohttp
import pytest
from PIL import Image

from tests.conftest import testdata, upload
from tests.dicomweb.helpers import read, split_multipart

pytest.importorskip("orthanc_lite.services.pixels")

JPEG_ACCEPT = "multipart/related; type=image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"


async def wado_path(http: aiohttp.ClientSession, *name: str) -> str:
    path = testdata(*name)
    await upload(http, path)
    ds = read(path.read_bytes())
    return f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"


async def multipart(http: aiohttp.ClientSession, path: str, accept: str | None = None,
                    status: int = 200) -> list[tuple[dict[str, str], bytes]]:
    async with http.get(path, headers={"Accept": accept} if accept else {}) as resp:
        assert resp.status == status, await resp.text()
        if status != 200:
            return []
        return split_multipart(resp.headers["Content-Type"], await resp.read())


async def test_frames_raw_jpeg_and_errors(http: aiohttp.ClientSession) -> None:
    uri = await wado_path(http, "TransferSyntaxes", "1.2.840.10008.1.2.4.50.dcm")
    [(headers, frame)] = await multipart(http, uri + "/frames/1")
    assert len(frame) == 480 * 640 * 3  # decoded, explicit little endian
    assert headers["Content-Type"].startswith("application/octet-stream")
    assert "1.2.840.10008.1.2.1" in headers["Content-Type"]
    [(headers, frame)] = await multipart(http, uri + "/frames/1", JPEG_ACCEPT)
    assert len(frame) == 53476  # the stored JPEG stream, not transcoded
    assert headers["Content-Location"].endswith(uri + "/frames/1")
    for bad in ("/frames/0", "/frames/2"):
        await multipart(http, uri + bad, status=400)
    for accept in ("nope", 'multipart/related; type="nope"'):
        await multipart(http, uri + "/frames/1", accept, status=400)
    octet = await multipart(http, uri + "/frames/1", 'multipart/related; type="application/octet-stream"')
    assert len(octet[0][1]) == 480 * 640 * 3


async def test_frames_of_several_fragments_and_big_endian(http: aiohttp.ClientSession) -> None:
    uri = await wado_path(http, "LenaTwiceWithFragments.dcm")
    [(_, first)] = await multipart(http, uri + "/frames/1", JPEG_ACCEPT)
    both = await multipart(http, uri + "/frames/1,2", JPEG_ACCEPT)
    assert len(first) == 69214 and [p for _, p in both] == [first, first]
    uri = await wado_path(http, "TransferSyntaxes", "1.2.840.10008.1.2.2.dcm")
    [(headers, _)] = await multipart(http, uri + "/frames/1")
    assert "transfer-syntax=1.2.840.10008.1.2.1" in headers["Content-Type"].replace('"', "")


async def test_retrieve_transcodes_to_explicit_little_endian(http: aiohttp.ClientSession) -> None:
    name = ("TransferSyntaxes", "1.2.840.10008.1.2.4.50.dcm")
    uri = await wado_path(http, *name)
    compressed = testdata(*name).stat().st_size
    [(_, default)] = await multipart(http, uri)
    assert str(read(default).file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"
    assert len(default) > 10 * compressed
    [(_, kept)] = await multipart(http, uri, "multipart/related; type=application/dicom; transfer-syntax=*")
    assert len(kept) == compressed
    [(_, same)] = await multipart(http, uri, "multipart/related; type=application/dicom; "
                                             "transfer-syntax=1.2.840.10008.1.2.4.50")
    assert len(same) == compressed


async def test_rendered_thumbnail_and_wado_uri_images(http: aiohttp.ClientSession) -> None:
    uri = await wado_path(http, "MultiframeWindowing.dcm")
    sop = uri.rsplit("/", 1)[1]
    async with http.get(uri + "/frames/1/rendered?window=127,256,linear") as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "image/jpeg"
        image = Image.open(io.BytesIO(await resp.read()))
    assert image.format == "JPEG" and image.mode == "L"
    async with http.get(uri + "/rendered", headers={"Accept": "image/png"}) as resp:
        assert Image.open(io.BytesIO(await resp.read())).format == "PNG"
    async with http.get(uri + "/frames/99/rendered") as resp:
        assert resp.status in (400, 404)
    async with http.get(uri + "/thumbnail") as resp:
        thumb = Image.open(io.BytesIO(await resp.read()))
    assert max(thumb.size) <= 128
    series = uri.rsplit("/instances/", 1)[0]
    async with http.get(series + "/rendered") as resp:
        assert resp.status == 200
    async with http.get(f"/wado?requestType=WADO&objectUID={sop}") as resp:
        assert Image.open(io.BytesIO(await resp.read())).format == "JPEG"
    async with http.get(f"/wado?requestType=WADO&objectUID={sop}&contentType=image/png") as resp:
        assert Image.open(io.BytesIO(await resp.read())).format == "PNG"
    async with http.get(f"/wado?requestType=WADO&objectUID={sop}&contentType=image/jpg") as resp:
        assert Image.open(io.BytesIO(await resp.read())).format == "JPEG"
