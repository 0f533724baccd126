"""Transcoding: /instances/{id}/file?transcode (results re-read by pydicom and dcmtk), transcode_file itself, and
IngestTranscoding on both ways in (REST upload and C-STORE)."""

from __future__ import annotations

import asyncio
import io
import pathlib
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from orthanc_lite.dicom import pixels
from orthanc_lite.dicom.transcode import transcode_file
from orthanc_lite.errors import OrthancError
from tests.conftest import testdata, upload

TS = "TransferSyntaxes"
LOSSLESS = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99",
            "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90"]
DCMTK = shutil.which("dcmdump") is not None
DECOMPRESSORS = {"1.2.840.10008.1.2.4.50": "dcmdjpeg", "1.2.840.10008.1.2.4.70": "dcmdjpeg",
                 "1.2.840.10008.1.2.5": "dcmdrle", "1.2.840.10008.1.2.4.80": "dcmdjpls"}


async def decoded(data: bytes) -> np.ndarray:
    """Frame 0 through our decoder, off the loop (the loop guard forbids parsing on it)."""
    return await asyncio.to_thread(lambda: pixels.decode_frame(pixels.load_dataset(data), 0))


def dcmtk_pixels(path: pathlib.Path, syntax: str, tmp: pathlib.Path) -> np.ndarray | None:
    """Decompress with dcmtk's own tool where one applies, then read the result: proves dcmtk reads our stream."""
    tool = DECOMPRESSORS.get(syntax)
    if tool is None or shutil.which(tool) is None:
        return None
    out = tmp / f"{path.stem}-{tool}.dcm"
    done = subprocess.run([tool, str(path), str(out)], capture_output=True, timeout=30)
    assert done.returncode == 0, done.stderr.decode()
    return pydicom.dcmread(out).pixel_array


@pytest.mark.parametrize("target", LOSSLESS)
@pytest.mark.parametrize("source", ["1.2.840.10008.1.2.4.70.dcm", "1.2.840.10008.1.2.1.dcm",
                                    "1.2.840.10008.1.2.4.91.dcm"])
async def test_file_transcode_lossless_roundtrip(http, tmp_path: pathlib.Path, source: str, target: str) -> None:
    path = testdata(TS, source)
    iid = (await upload(http, path))["ID"]
    async with http.get(f"/instances/{iid}/file", params={"transcode": target}) as resp:
        assert resp.status == 200 and resp.content_type == "application/dicom"
        body = await resp.read()
    ds = pydicom.dcmread(io.BytesIO(body))
    original = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == target
    assert ds.SOPInstanceUID == original.SOPInstanceUID  # lossless: same instance
    expected = await decoded(path.read_bytes())
    assert np.array_equal(await decoded(body), expected)
    out = tmp_path / "out.dcm"
    out.write_bytes(body)
    if DCMTK:
        assert subprocess.run(["dcmdump", "-q", str(out)], capture_output=True).returncode == 0
        by_dcmtk = dcmtk_pixels(out, target, tmp_path)
        if by_dcmtk is not None and expected.ndim == 2:
            assert np.array_equal(by_dcmtk, expected)


async def test_file_transcode_lossy_jpeg(http, tmp_path: pathlib.Path) -> None:
    path = testdata(TS, "1.2.840.10008.1.2.1.dcm")  # RGB
    iid = (await upload(http, path))["ID"]
    sizes = []
    for quality in (95, 20):
        async with http.get(f"/instances/{iid}/file",
                            params={"transcode": "1.2.840.10008.1.2.4.50", "lossy-quality": str(quality)}) as resp:
            assert resp.status == 200
            body = await resp.read()
        sizes.append(len(body))
        ds = pydicom.dcmread(io.BytesIO(body))
        assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"
        assert ds.SOPInstanceUID != pydicom.dcmread(path).SOPInstanceUID  # lossy: a new instance, as Orthanc
        assert ds.LossyImageCompression == "01"
        lossy = await decoded(body)
        original = await decoded(path.read_bytes())
        assert np.abs(lossy.astype(int) - original.astype(int)).mean() < (4 if quality == 95 else 12)
        out = tmp_path / f"q{quality}.dcm"
        out.write_bytes(body)
        by_dcmtk = dcmtk_pixels(out, "1.2.840.10008.1.2.4.50", tmp_path)
        if by_dcmtk is not None:
            assert by_dcmtk.shape == original.shape
    assert sizes[1] < sizes[0]


async def test_file_transcode_errors(http) -> None:
    iid = (await upload(http, testdata("SignedCT.dcm")))["ID"]
    async with http.get(f"/instances/{iid}/file?transcode=1.2.3") as resp:
        assert resp.status == 400 and (await resp.json())["OrthancStatus"] == 3
    async with http.get(f"/instances/{iid}/file?transcode=1.2.840.10008.1.2.4.50&lossy-quality=0") as resp:
        assert resp.status == 400
    async with http.get(f"/instances/{iid}/file?transcode=1.2.840.10008.1.2.4.50") as resp:
        assert resp.status == 500 and (await resp.json())["OrthancStatus"] == 2  # 16-bit: no baseline JPEG
    async with http.get("/instances/unknown/file?transcode=1.2.840.10008.1.2.1") as resp:
        assert resp.status == 404


def test_transcode_file_accepts_a_path_and_keeps_same_syntax(tmp_path: pathlib.Path) -> None:
    path = testdata(TS, "1.2.840.10008.1.2.5.dcm")
    assert transcode_file(path, "1.2.840.10008.1.2.5", 90) == path.read_bytes()
    implicit = transcode_file(str(path), "1.2.840.10008.1.2", 90)
    assert pydicom.dcmread(io.BytesIO(implicit)).file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    with pytest.raises(OrthancError):
        transcode_file(path, "1.2.840.10008.1.2.4.100", 90)  # no MPEG-2 encoder


def test_decodes_every_transfer_syntax_file() -> None:
    for path in sorted(testdata(TS).glob("*.dcm")):
        image = pixels.decode_frame(pixels.load_dataset(path.read_bytes()), 0)
        assert image.size > 0 and image.max() > image.min(), path.name


class TestIngestTranscoding:
    @pytest.fixture
    def settings(self, settings):
        return settings.replace(IngestTranscoding="1.2.840.10008.1.2.1", IngestTranscodingOfCompressed=True,
                                IngestTranscodingOfUncompressed=True)

    async def test_rest_upload_is_converted(self, http) -> None:
        iid = (await upload(http, testdata(TS, "1.2.840.10008.1.2.4.70.dcm")))["ID"]
        async with http.get(f"/instances/{iid}/metadata/TransferSyntax") as resp:
            assert await resp.text() == "1.2.840.10008.1.2.1"
        async with http.get(f"/instances/{iid}/file") as resp:
            stored = pydicom.dcmread(io.BytesIO(await resp.read()))
        assert stored.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        original = pydicom.dcmread(testdata(TS, "1.2.840.10008.1.2.4.70.dcm"))
        assert np.array_equal(stored.pixel_array, original.pixel_array)

    @pytest.mark.skipif(shutil.which("storescu") is None, reason="dcmtk storescu not installed")
    async def test_c_store_is_converted(self, http, server) -> None:
        path = testdata(TS, "1.2.840.10008.1.2.dcm")
        # the server runs on this loop: the client must not block it
        proc = await asyncio.create_subprocess_exec("storescu", "-aec", "ORTHANC", "127.0.0.1", str(server.dicom_port),
                                                    str(path), stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()
        async with http.get("/instances") as resp:
            [iid] = await resp.json()
        async with http.get(f"/instances/{iid}/metadata/TransferSyntax") as resp:
            assert await resp.text() == "1.2.840.10008.1.2.1"


class TestIngestTranscodingOfCompressedOff:
    @pytest.fixture
    def settings(self, settings):
        return settings.replace(IngestTranscoding="1.2.840.10008.1.2", IngestTranscodingOfCompressed=False)

    async def test_compressed_kept_uncompressed_converted(self, http) -> None:
        compressed = (await upload(http, testdata(TS, "1.2.840.10008.1.2.5.dcm")))["ID"]
        plain = (await upload(http, testdata(TS, "1.2.840.10008.1.2.1.dcm")))["ID"]
        async with http.get(f"/instances/{compressed}/metadata/TransferSyntax") as resp:
            assert await resp.text() == "1.2.840.10008.1.2.5"
        async with http.get(f"/instances/{plain}/metadata/TransferSyntax") as resp:
            assert await resp.text() == "1.2.840.10008.1.2"


def test_syntax_for_peer() -> None:
    from orthanc_lite.dicom.transcode import syntax_for_peer

    jpeg, explicit, implicit = "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
    assert syntax_for_peer(jpeg, [implicit, jpeg]) == jpeg  # accepted as stored: no transcoding
    assert syntax_for_peer(jpeg, [implicit, explicit]) == explicit
    assert syntax_for_peer(jpeg, [implicit]) == implicit
    assert syntax_for_peer(explicit, ["1.2.840.10008.1.2.5"]) == "1.2.840.10008.1.2.5"
    assert syntax_for_peer(explicit, ["1.2.840.10008.1.2.4.100"]) is None


class TestLossyIngestTranscoding:
    @pytest.fixture
    def settings(self, settings):
        return settings.replace(IngestTranscoding="1.2.840.10008.1.2.4.50", DicomLossyTranscodingQuality=80)

    async def test_lossy_ingest_makes_a_new_instance(self, http) -> None:
        path = testdata(TS, "1.2.840.10008.1.2.1.dcm")  # 8-bit RGB
        answer = await upload(http, path)
        async with http.get(f"/instances/{answer['ID']}/simplified-tags") as resp:
            tags = await resp.json()
        original = pydicom.dcmread(path)
        assert tags["SOPInstanceUID"] != original.SOPInstanceUID  # as Orthanc: lossy means a new instance
        assert tags["LossyImageCompression"] == "01"
        async with http.get(f"/instances/{answer['ID']}/metadata/TransferSyntax") as resp:
            assert await resp.text() == "1.2.840.10008.1.2.4.50"
        pdf = await upload(http, testdata("sample-pdf.dcm"))  # nothing to compress: stored as it came
        async with http.get(f"/instances/{pdf['ID']}/simplified-tags") as resp:
            assert (await resp.json())["SOPInstanceUID"] == pydicom.dcmread(testdata("sample-pdf.dcm")).SOPInstanceUID
