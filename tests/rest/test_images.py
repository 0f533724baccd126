"""Image routes over real HTTP: preview / uint8 / uint16 / int16 / rendered / matlab / numpy / raw frames, their
encodings (PNG, JPEG, PAM) and Orthanc's error answers, on the shared test files and on pydicom-built images."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tests.conftest import testdata, upload

TS = "TransferSyntaxes"


def make_image(pixels: np.ndarray, photometric: str = "MONOCHROME2", slope: float | None = None,
               intercept: float | None = None, window: tuple[float, float] | None = None,
               series_uid: str | None = None, position: float | None = None, number: int = 1) -> bytes:
    """A small uncompressed DICOM image built with pydicom (frames first when 3-D grayscale)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientID, ds.PatientName = "PIXELS", "Pixels^Test"
    ds.StudyInstanceUID = "1.2.3.4.5.6"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.Modality = "CT"
    ds.InstanceNumber = number
    frames = pixels if pixels.ndim == 3 else pixels[np.newaxis]
    ds.NumberOfFrames = frames.shape[0]
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = frames.dtype.itemsize * 8
    ds.BitsStored = ds.BitsAllocated
    ds.HighBit = ds.BitsAllocated - 1
    ds.PixelRepresentation = 1 if frames.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept or 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if position is not None:
        ds.ImagePositionPatient = [0, 0, position]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelData = frames.astype(frames.dtype.newbyteorder("<")).tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


async def post(http, data: bytes) -> str:
    async with http.post("/instances", data=data) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["ID"]


async def get(http, path: str, **headers: str) -> tuple[int, str, bytes]:
    async with http.get(path, headers=headers, allow_redirects=False) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


async def test_modes_clip_and_stretch(http) -> None:
    values = np.array([[-1000, 0, 100], [300, 40000 - 65536, 32767]], np.int16)
    iid = await post(http, make_image(values))
    status, ctype, body = await get(http, f"/instances/{iid}/preview")
    assert (status, ctype) == (200, "image/png")
    preview = png(body)
    assert preview.dtype == np.uint8 and preview.shape == (2, 3)
    assert preview.min() == 0 and preview.max() == 255  # stretched
    low, high = int(values.min()), int(values.max())
    expected = np.rint((values.astype(np.float64) - low) * 255 / (high - low))
    assert np.abs(preview.astype(int) - expected).max() <= 1
    _, _, body = await get(http, f"/instances/{iid}/image-uint8")
    assert png(body).tolist() == np.clip(values, 0, 255).tolist()
    _, _, body = await get(http, f"/instances/{iid}/image-uint16")
    assert png(body).astype(np.int64).tolist() == np.clip(values, 0, 65535).tolist()
    _, _, body = await get(http, f"/instances/{iid}/frames/0/image-int16")
    assert png(body).astype(np.uint16).view(np.int16).tolist() == values.tolist()


async def test_monochrome1_preview_is_inverted(http) -> None:
    values = np.array([[0, 10], [20, 30]], np.uint16)
    mono2 = png((await get(http, f"/instances/{await post(http, make_image(values))}/preview"))[2])
    mono1 = png((await get(http, f"/instances/{await post(http, make_image(values, 'MONOCHROME1'))}/preview"))[2])
    assert (mono1.astype(int) + mono2.astype(int) == 255).all()


async def test_encodings_by_accept(http) -> None:
    iid = (await upload(http, testdata("SignedCT.dcm")))["ID"]
    status, ctype, body = await get(http, f"/instances/{iid}/preview?quality=50", Accept="image/jpeg")
    assert (status, ctype) == (200, "image/jpeg") and body[:2] == b"\xff\xd8"
    status, ctype, body = await get(http, f"/instances/{iid}/image-int16", Accept="image/x-portable-arbitrarymap")
    assert (status, ctype) == (200, "image/x-portable-arbitrarymap")
    header, pixels = body.split(b"ENDHDR\n", 1)
    assert b"WIDTH 512" in header and b"MAXVAL 65535" in header
    ds = pydicom.dcmread(testdata("SignedCT.dcm"))
    assert np.frombuffer(pixels, ">i2").reshape(512, 512).tolist() == ds.pixel_array.tolist()
    assert (await get(http, f"/instances/{iid}/preview", Accept="text/html"))[0] == 404
    assert (await get(http, f"/instances/{iid}/preview", Accept="text/html, image/*;q=0.5"))[1] == "image/png"
    assert (await get(http, f"/instances/{iid}/image-uint16", Accept="image/jpeg"))[0] == 404  # no 16-bit JPEG
    assert (await get(http, f"/instances/{iid}/preview?quality=0", Accept="image/jpeg"))[0] == 415


async def test_errors_are_orthancs(http) -> None:
    iid = (await upload(http, testdata("SignedCT.dcm")))["ID"]
    pdf = (await upload(http, testdata("sample-pdf.dcm")))["ID"]
    bad = (await upload(http, testdata("2026-05-26-oob-monochrome-65535.dcm")))["ID"]
    assert (await get(http, f"/instances/{iid}/frames/5/preview"))[:1] == (404,)
    assert (await get(http, f"/instances/{iid}/frames/x/preview"))[0] == 404
    assert (await get(http, "/instances/nope/preview"))[0] == 404
    for route in ("preview", "image-uint8", "rendered"):
        status, _, body = await get(http, f"/instances/{pdf}/{route}")
        assert (status, body) == (415, b"")
        assert (await get(http, f"/instances/{bad}/{route}"))[0] == 415
    status, _, _ = await get(http, f"/instances/{pdf}/preview?returnUnsupportedImage")
    assert status == 301  # HttpOutput::Redirect
    async with http.get(f"/instances/{pdf}/numpy") as resp:
        assert resp.status == 500 and (await resp.json())["OrthancStatus"] == 2  # NotImplemented
    async with http.get(f"/instances/{bad}/matlab") as resp:
        assert resp.status == 400 and (await resp.json())["OrthancStatus"] == 15  # BadFileFormat
    async with http.get(f"/instances/{iid}/frames/3/raw") as resp:
        assert resp.status == 400 and (await resp.json())["OrthancStatus"] == 3  # ParameterOutOfRange
    color = (await upload(http, testdata("ColorTestImageJ.dcm")))["ID"]
    assert (await get(http, f"/instances/{color}/image-uint8"))[0] == 415  # colour has only a preview


@pytest.mark.parametrize("name", ["1.2.840.10008.1.2.dcm", "1.2.840.10008.1.2.2.dcm", "1.2.840.10008.1.2.4.50.dcm",
                                  "1.2.840.10008.1.2.4.51.dcm", "1.2.840.10008.1.2.4.57.dcm",
                                  "1.2.840.10008.1.2.4.70.dcm", "1.2.840.10008.1.2.4.80.dcm",
                                  "1.2.840.10008.1.2.4.81.dcm", "1.2.840.10008.1.2.4.90.dcm",
                                  "1.2.840.10008.1.2.4.91.dcm", "1.2.840.10008.1.2.5.dcm"])
async def test_every_transfer_syntax_previews(http, name: str) -> None:
    iid = (await upload(http, testdata(TS, name)))["ID"]
    status, ctype, body = await get(http, f"/instances/{iid}/preview")
    assert (status, ctype) == (200, "image/png")
    image = png(body)
    assert image.size > 0 and image.max() > image.min()


async def test_rendered_windowing_and_resize(http) -> None:
    values = np.arange(0, 400, 4, dtype=np.uint16).reshape(10, 10)
    iid = await post(http, make_image(values, slope=2, intercept=-100, window=(100, 200)))
    _, _, body = await get(http, f"/instances/{iid}/rendered")
    rendered = png(body).astype(int)
    hu = values.astype(float) * 2 - 100
    expected = np.clip((hu - (100 - 100)) * 255 / 200, 0, 255)
    assert np.abs(rendered - expected).max() <= 1
    _, _, body = await get(http, f"/instances/{iid}/rendered?window-center=0&window-width=2")
    assert set(np.unique(png(body))) <= {0, 127, 255}
    _, _, body = await get(http, f"/instances/{iid}/frames/0/rendered?width=5&smooth=1")
    assert png(body).shape == (5, 5)
    _, _, body = await get(http, f"/instances/{iid}/rendered?width=20&height=4")
    assert png(body).shape == (4, 4)
    assert (await get(http, f"/instances/{iid}/rendered?width=-1"))[0] == 404
    assert (await get(http, f"/instances/{iid}/rendered?window-width=abc"))[0] == 404
    color = (await upload(http, testdata("ColorTestImageJ.dcm")))["ID"]
    _, _, body = await get(http, f"/instances/{color}/rendered?height=100")
    assert png(body).shape == (100, 100, 3)


async def test_numpy_instance_frame_and_compress(http) -> None:
    frames = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)
    iid = await post(http, make_image(frames, slope=0.5, intercept=10))
    _, _, body = await get(http, f"/instances/{iid}/numpy")
    array = np.load(io.BytesIO(body))
    assert array.dtype == np.float32 and array.shape == (2, 3, 4, 1)
    assert np.allclose(array[..., 0], frames * 0.5 + 10)
    _, _, body = await get(http, f"/instances/{iid}/numpy?rescale=0")
    raw = np.load(io.BytesIO(body))
    assert raw.dtype == np.uint16 and (raw[..., 0] == frames).all()
    _, _, body = await get(http, f"/instances/{iid}/frames/1/numpy?compress=1")
    npz = np.load(io.BytesIO(body))
    assert list(npz.keys()) == ["arr_0"] and npz["arr_0"].shape == (3, 4, 1)
    assert np.allclose(npz["arr_0"][..., 0], frames[1] * 0.5 + 10)
    assert zipfile.is_zipfile(io.BytesIO(body))
    color = (await upload(http, testdata("ColorTestMalaterre.dcm")))["ID"]
    _, _, body = await get(http, f"/instances/{color}/numpy")
    rgb = np.load(io.BytesIO(body))
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 41, 41, 3)


async def test_numpy_series_in_spatial_order(http) -> None:
    series = generate_uid()
    for number, z in ((1, 30.0), (2, 10.0), (3, 20.0)):
        await post(http, make_image(np.full((2, 2), int(z), np.int16), series_uid=series, position=z, number=number))
    async with http.get("/series") as resp:
        series_id = (await resp.json())[0]
    _, _, body = await get(http, f"/series/{series_id}/numpy?rescale=0")
    array = np.load(io.BytesIO(body))
    assert array.shape == (3, 2, 2, 1)
    assert [int(array[i, 0, 0, 0]) for i in range(3)] == [10, 20, 30]


async def test_matlab_and_raw_frames(http) -> None:
    values = np.array([[1, 2], [3, 4]], np.uint8)
    iid = await post(http, make_image(values))
    status, _, body = await get(http, f"/instances/{iid}/matlab")
    assert status == 200 and body == b"double([ 1 2 ; 3 4 ])"
    status, ctype, body = await get(http, f"/instances/{iid}/frames/0/raw")
    assert (status, ctype, body) == (200, "application/octet-stream", bytes([1, 2, 3, 4]))
    jpeg = (await upload(http, testdata("LenaTwiceWithFragments.dcm")))["ID"]
    status, ctype, body = await get(http, f"/instances/{jpeg}/frames/1/raw")
    assert (status, ctype) == (200, "image/jpeg") and body[:2] == b"\xff\xd8"
    _, _, gz = await get(http, f"/instances/{jpeg}/frames/1/raw.gz")
    assert gzip.decompress(gz) == body
    async with http.get(f"/instances/{jpeg}/frames") as resp:
        assert await resp.json() == [0, 1]


async def test_raw_frame_of_a_video_is_the_whole_stream(http) -> None:
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(io.BytesIO(make_image(np.zeros((4, 4), np.uint8))))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.102"  # MPEG-4 AVC/H.264
    stream = bytes(range(256)) * 3
    ds.PixelData = encapsulate([stream[:300], stream[300:]])  # one video split over fragments
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.NumberOfFrames = 2
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    iid = await post(http, buffer.getvalue())
    status, ctype, body = await get(http, f"/instances/{iid}/frames/0/raw")
    assert (status, ctype) == (200, "video/mp4")
    assert body.startswith(stream[:300]) and stream[300:] in body
    assert (await get(http, f"/instances/{iid}/preview"))[0] == 415  # videos are not decoded
