"""The image routes' one-hop path (index lookup on the worker's own connection, cached dataset and pixel layout,
fast grayscale decoding): a deleted instance is gone at once, a replaced one shows its new pixels, and the
previews of every fast-decoded syntax carry the pixels of the file."""

from __future__ import annotations

import asyncio
import io

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from orthanc_lite.dicom.transcode import transcode_file

SOP = generate_uid()


def _instance(pixels: np.ndarray, sop: str = SOP, syntax: str = "1.2.840.10008.1.2.1") -> bytes:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "FAST", "1.2.3.4", "1.2.3.4.5"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.astype("<u2").tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return transcode_file(buffer.getvalue(), syntax, 90) if syntax != "1.2.840.10008.1.2.1" else buffer.getvalue()


def _expected_preview(pixels: np.ndarray) -> np.ndarray:
    low, high = int(pixels.min()), int(pixels.max())
    scaled = (pixels.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


async def _post(http, data: bytes) -> str:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["ID"])


async def _preview(http, iid: str) -> tuple[int, np.ndarray | None]:
    async with http.get(f"/instances/{iid}/preview") as resp:
        body = await resp.read()
        return resp.status, np.asarray(Image.open(io.BytesIO(body))) if resp.status == 200 else None


async def test_deleted_then_replaced_instance(http) -> None:
    first = np.arange(24 * 20, dtype=np.uint16).reshape(24, 20) * 4
    second = first[::-1].copy() + 7
    iid = await _post(http, await asyncio.to_thread(_instance, first))
    status, image = await _preview(http, iid)
    assert status == 200 and np.array_equal(image, _expected_preview(first))
    async with http.delete(f"/instances/{iid}") as resp:
        assert resp.status == 200
    assert (await _preview(http, iid))[0] == 404
    assert await _post(http, await asyncio.to_thread(_instance, second)) == iid  # same UIDs, hence the same public ID
    status, image = await _preview(http, iid)
    assert status == 200 and np.array_equal(image, _expected_preview(second))


@pytest.mark.parametrize("syntax", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                                    "1.2.840.10008.1.2.5"])
async def test_lossless_previews_keep_the_pixels(http, syntax: str) -> None:
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 4096, (32, 30)).astype(np.uint16)
    iid = await _post(http, await asyncio.to_thread(_instance, pixels, generate_uid(), syntax))
    for _ in range(2):  # the first request parses, the second finds the cached dataset and layout
        status, image = await _preview(http, iid)
        assert status == 200 and np.array_equal(image, _expected_preview(pixels))
    async with http.get(f"/instances/{iid}/image-uint16") as resp:
        assert resp.status == 200
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(await resp.read()))), pixels)
