"""The fast grayscale decoding path (dicom/pixels.py: numpy for uncompressed buffers, GDCM for JPEG / JPEG-LS)
gives exactly the pixels pydicom's pixel_array gives, on every shared sample file and on synthetic images of
each transfer syntax, bit depth and signedness it handles; it declines (None) what it does not handle."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from orthanc_lite.dicom import pixels
from orthanc_lite.dicom.transcode import transcode_file
from tests.conftest import TESTDATA

SAMPLES = sorted(p for p in TESTDATA.rglob("*.dcm") if p.is_file())


def _synthetic(bits_stored: int, signed: bool, frames: int = 1, noise_high_bits: bool = False) -> bytes:
    rng = np.random.default_rng(bits_stored * 7 + signed)
    allocated = 8 if bits_stored <= 8 else 16
    low, high = (-(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1) if signed else (0, (1 << bits_stored) - 1)
    values = rng.integers(low, high + 1, (frames, 24, 20))
    dtype = np.dtype(f"{'i' if signed else 'u'}{allocated // 8}")
    array = values.astype(dtype)
    if noise_high_bits and bits_stored < allocated:  # garbage above Bits Stored, which pydicom masks off
        array = (array.view(f"u{allocated // 8}") | np.array(1 << (allocated - 1), f"u{allocated // 8}")).view(dtype)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 24, 20, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = allocated, bits_stored, bits_stored - 1, int(signed)
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = array.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _both(data: bytes) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(pydicom's frame, the fast path's frame or None) for every frame of a file."""
    ds = pixels.load_dataset(data)
    try:
        info = pixels.layout(ds)
    except Exception:
        return []
    out = []
    for frame in range(min(info.frames, 3)):
        pixels._fill_defaults(ds)
        try:
            reference = pixels._decode_with_pydicom(ds, info, frame)
        except Exception:
            continue  # pydicom cannot decode it; then neither path is used for the comparison
        out.append((reference, pixels.fast_grayscale_frame(ds, info, frame)))
    return out


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fast_path_equals_pydicom_on_samples(path) -> None:
    for reference, fast in _both(path.read_bytes()):
        if fast is not None:
            assert fast.dtype == reference.dtype and fast.shape == reference.shape
            assert np.array_equal(fast, reference)


SYNTAXES = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.57",
            "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.5"]
ALWAYS_FAST = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.5")


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("bits, signed", [(8, False), (12, False), (16, False), (12, True), (16, True)])
def test_fast_path_equals_pydicom_on_synthetic(syntax: str, bits: int, signed: bool) -> None:
    try:
        data = transcode_file(_synthetic(bits, signed), syntax, 90)
    except Exception:
        pytest.skip(f"{syntax} cannot encode {bits} bits (signed={signed})")
    compared = _both(data)
    assert compared
    for reference, fast in compared:
        if fast is not None:
            assert fast.dtype == reference.dtype and np.array_equal(fast, reference)
    if syntax in ALWAYS_FAST or (syntax.endswith(".50") and bits == 8 and not signed) or (not signed and syntax != "1.2.840.10008.1.2.4.50"
                                                                  and bits >= 8):
        assert all(fast is not None for _, fast in compared), "the fast path should handle this layout"


def test_fast_path_masks_bits_above_bits_stored_and_handles_frames() -> None:
    for reference, fast in _both(_synthetic(12, False, frames=3, noise_high_bits=True)) + \
            _both(_synthetic(12, True, frames=2, noise_high_bits=True)):
        assert fast is not None and np.array_equal(fast, reference)


def test_fast_path_declines_colour() -> None:
    data = (TESTDATA / "ColorTestMalaterre.dcm").read_bytes()
    ds = pixels.load_dataset(data)
    assert pixels.fast_grayscale_frame(ds, pixels.layout(ds), 0) is None
