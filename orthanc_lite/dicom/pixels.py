"""Pixel data decoding: one frame of a DICOM dataset -> a numpy image in Orthanc's pixel formats.

Sync and pure (run it in the cpu pool). Decoding goes through pydicom's pixel handlers with the codec
packages installed beside it (pylibjpeg + libjpeg/openjpeg/rle plugins, pyjpegls, python-gdcm); the one
stream none of pydicom's plugins accepts, 12-bit JPEG extended (1.2.840.10008.1.2.4.51), is handed to
GDCM's own codec directly. Errors are OrthancError with Orthanc's codes: NotImplemented when nothing can
decode the image (no pixel data, unsupported layout), BadFileFormat when the data is corrupted,
ParameterOutOfRange for a frame that does not exist.

The decoded formats are Orthanc's (`DicomImageInformation::ExtractPixelFormat`): grayscale as uint8
(<= 8 bits stored), uint16 or int16 (signed), uint32/int32 above 16 bits; colour as RGB uint8 (YBR and
palette converted to RGB) or RGB uint16 (16-bit colour). MONOCHROME1 is not inverted here: the preview
does it, as Orthanc.
"""

from __future__ import annotations

import io
import logging
import os
import re
import struct
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    RLELossless,
)

from ..errors import ErrorCode, OrthancError
from .values import DicomReadError, read_dataset

logger = logging.getLogger(__name__)

PIXEL_DATA: Final = 0x7FE00010
UNCOMPRESSED: Final = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                                 "1.2.840.10008.1.2.1.99"})
_MPEG_SYNTAXES: Final = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (100, 101, 102, 103, 104, 105, 106, 107, 108))
_NATIVE_LITTLE_ENDIAN: Final = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian})
_JPEG_LS: Final = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})
# Where pydicom's first decoding plugin is GDCM (JPEG 2000 too, but pylibjpeg-openjpeg is as fast there)
_GDCM_FIRST: Final = frozenset({"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70"}) | _JPEG_LS
_SOF_MARKERS: Final = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF, 0xF7})
_JPEG2000: Final = frozenset(f"1.2.840.10008.1.2.4.{n}" for n in (90, 91, 92, 93))


@dataclass(frozen=True, slots=True)
class PixelLayout:
    """The image module of a dataset, with Orthanc's defaults for missing values."""

    rows: int
    columns: int
    samples: int
    bits_allocated: int
    bits_stored: int
    signed: bool
    photometric: str
    planar: int
    frames: int
    transfer_syntax: str

    @property
    def is_color(self) -> bool:
        return self.samples == 3 or self.photometric == "PALETTE COLOR"


def load_dataset(source: bytes | str | os.PathLike[str]) -> Dataset:
    """Parse a whole DICOM file for its pixels; a file without meta header gets the syntax it was read in."""
    try:
        ds = read_dataset(source)
    except DicomReadError as exc:
        raise OrthancError(ErrorCode.BadFileFormat, str(exc)) from None
    ensure_transfer_syntax(ds)
    return ds


def ensure_transfer_syntax(ds: Dataset) -> str:
    """The dataset's transfer syntax, recorded in its file meta when the file had none (pydicom needs it)."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    syntax = meta.get("TransferSyntaxUID")
    if syntax:
        return str(syntax)
    implicit, little = ds.original_encoding
    guessed = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
    meta.TransferSyntaxUID = guessed
    return str(guessed)


def _int(ds: Dataset, keyword: str, default: int) -> int:
    try:
        value = ds.get(keyword)
        return default if value is None or value == "" else int(value)
    except (TypeError, ValueError):
        return default


def frame_count(ds: Dataset) -> int:
    """DicomFrameIndex::GetFramesCount: NumberOfFrames, 1 when absent."""
    text = str(ds.get("NumberOfFrames", "") or "").strip()
    if not text:
        return 1
    if not re.fullmatch(r"[+-]?[0-9]+", text) or int(text) < 0:
        raise OrthancError(ErrorCode.BadFileFormat, f"Unsupported value for NumberOfFrames: {text}")
    return int(text)


def layout(ds: Dataset) -> PixelLayout:
    """The pixel layout of `ds`; NotImplemented when it has no pixel data (Orthanc cannot decode it)."""
    syntax = ensure_transfer_syntax(ds)
    if PIXEL_DATA not in ds:
        # DCMTK finds no pixel sequence in a compressed file (BadFileFormat); an uncompressed one just has
        # no image format (NotImplemented)
        if syntax not in UNCOMPRESSED:
            raise OrthancError(ErrorCode.BadFileFormat, "Cannot access a raw frame")
        raise OrthancError(ErrorCode.NotImplemented, "No pixel data in this DICOM instance")
    rows, columns = _int(ds, "Rows", 0), _int(ds, "Columns", 0)
    bits_allocated = _int(ds, "BitsAllocated", 0)
    if rows <= 0 or columns <= 0 or bits_allocated <= 0:
        raise OrthancError(ErrorCode.BadFileFormat, "Missing image dimensions")
    samples = _int(ds, "SamplesPerPixel", 1)
    photometric = str(ds.get("PhotometricInterpretation", "") or ("RGB" if samples == 3 else "MONOCHROME2")).strip()
    return PixelLayout(rows, columns, samples, bits_allocated, _int(ds, "BitsStored", bits_allocated),
                       _int(ds, "PixelRepresentation", 0) == 1, photometric, _int(ds, "PlanarConfiguration", 0),
                       frame_count(ds), syntax)


def _check_frame(info: PixelLayout, frame: int) -> None:
    if frame < 0 or frame >= info.frames:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Frame {frame} out of range (0..{info.frames - 1})")


def decode_frame(ds: Dataset, frame: int, info: PixelLayout | None = None) -> np.ndarray:
    """Frame `frame` (0-based) as a 2-D grayscale array or an (H, W, 3) RGB array, in Orthanc's formats.
    `info`: layout(ds) when the caller already has it (reading it costs as much as a small decode)."""
    if info is None:
        info = layout(ds)
    _check_frame(info, frame)
    if info.transfer_syntax in _MPEG_SYNTAXES:
        raise OrthancError(ErrorCode.NotImplemented, "Cannot decode a video")
    if info.samples not in (1, 3):
        raise OrthancError(ErrorCode.NotImplemented, f"Unsupported SamplesPerPixel: {info.samples}")
    array = fast_grayscale_frame(ds, info, frame)
    if array is None:
        _fill_defaults(ds)
        if info.transfer_syntax == JPEGExtended12Bit and info.bits_stored > 8:
            array = _decode_jpeg12_with_gdcm(ds, info, frame)
        else:
            array = _decode_with_pydicom(ds, info, frame)
    return _to_orthanc_format(ds, info, array)


def fast_grayscale_frame(ds: Dataset, info: PixelLayout, frame: int) -> np.ndarray | None:
    """The frame pydicom's pixel_array would give, for the common grayscale layouts, without its per-call
    machinery (about 0.2 ms, as much as decoding a whole 64x64 frame): numpy straight from an uncompressed
    little endian buffer, or one codec called directly (pylibjpeg-rle for RLE, CharLS for JPEG-LS, Pillow for
    8-bit baseline JPEG, GDCM for the other JPEG). None when the layout is not one of these, or anything looks
    unusual: pydicom then decodes (and reports the errors). tests/unit/test_pixels_fast.py checks the values."""
    if (info.samples != 1 or info.photometric not in ("MONOCHROME1", "MONOCHROME2")
            or info.bits_allocated not in (8, 16) or not 1 <= info.bits_stored <= info.bits_allocated):
        return None
    dtype = np.dtype(f"{'i' if info.signed else 'u'}{info.bits_allocated // 8}")
    if info.transfer_syntax in _NATIVE_LITTLE_ENDIAN:
        data = ds.get("PixelData")
        size = info.rows * info.columns * dtype.itemsize
        if not isinstance(data, bytes) or len(data) < info.frames * size:
            return None
        array = np.frombuffer(data, dtype, info.rows * info.columns, frame * size).reshape(info.rows, info.columns)
        return _correct_unused_bits(array.copy(), info)
    if info.frames != 1:
        return None
    if info.transfer_syntax == RLELossless:
        return _rle_grayscale(ds, info, dtype)
    if info.transfer_syntax in _GDCM_FIRST and not info.signed:
        return _jpeg_grayscale(ds, info, dtype)
    return None


def _single_stream(ds: Dataset) -> bytes | None:
    pixel_data = ds.get("PixelData")
    if not isinstance(pixel_data, bytes):
        return None
    try:
        return next(iter(generate_frames(pixel_data, number_of_frames=1)))
    except (ValueError, StopIteration, struct.error):
        return None


def _rle_grayscale(ds: Dataset, info: PixelLayout, dtype: np.dtype[Any]) -> np.ndarray | None:
    """An RLE frame through pylibjpeg-rle, pydicom's first RLE plugin (lossless: one possible answer)."""
    try:
        from rle.rle import decode_frame as rle_decode
    except ImportError:
        return None
    stream = _single_stream(ds)
    if stream is None:
        return None
    try:
        data = rle_decode(stream, info.rows * info.columns, info.bits_allocated, "<")
    except (ValueError, RuntimeError):
        return None
    return _decoded_grayscale(data, info, dtype)


def _decoded_grayscale(data: bytes, info: PixelLayout, dtype: np.dtype[Any]) -> np.ndarray | None:
    """A codec's output buffer as the frame (a writable copy, unused bits corrected); None when its size is not
    one frame's (a failed decoding: pydicom then decodes and reports the error)."""
    if len(data) != info.rows * info.columns * dtype.itemsize:
        return None
    return _correct_unused_bits(np.frombuffer(data, dtype).reshape(info.rows, info.columns).copy(), info)


def _correct_unused_bits(array: np.ndarray, info: PixelLayout) -> np.ndarray:
    """pydicom's correction when Bits Stored < Bits Allocated: the unused high bits dropped (sign-extended)."""
    shift = info.bits_allocated - info.bits_stored
    if shift:
        np.left_shift(array, shift, out=array)
        np.right_shift(array, shift, out=array)
    return array


def _jpeg_grayscale(ds: Dataset, info: PixelLayout, dtype: np.dtype[Any]) -> np.ndarray | None:
    """One unsigned grayscale JPEG / JPEG-LS frame. JPEG-LS through CharLS, twice as fast as GDCM: its decoding
    is fully specified (lossless and near-lossless alike), so any conforming decoder gives these values. 8-bit
    baseline JPEG through Pillow, other JPEG through GDCM set up as pydicom's GDCM plugin does."""
    stream = _single_stream(ds)
    if stream is None:
        return None
    precision = _sof_precision(stream)
    if precision is None:
        return None
    jpeg_ls = info.transfer_syntax in _JPEG_LS
    bits_stored = precision if jpeg_ls else info.bits_stored
    if not 1 <= bits_stored <= info.bits_allocated or (
            jpeg_ls and (bits_stored in (6, 7) or (bits_stored > 8) != (info.bits_allocated == 16))):
        return None  # a stream whose precision changes pydicom's output type: leave it to pydicom
    if jpeg_ls:
        return _charls_grayscale(stream, info, dtype)
    if info.transfer_syntax == JPEGBaseline8Bit and info.bits_allocated == 8:
        array = _pillow_grayscale(stream, info)
        if array is not None:
            return _correct_unused_bits(array, info)
    return _gdcm_grayscale(stream, info, dtype)


def _gdcm_grayscale(stream: bytes, info: PixelLayout, dtype: np.dtype[Any]) -> np.ndarray | None:
    try:
        import gdcm
    except ImportError:
        return None
    pixel_format = gdcm.PixelFormat(1, info.bits_allocated, info.bits_stored, info.bits_stored - 1, 0)
    # GDCM answers an empty buffer when it fails
    return _decoded_grayscale(_gdcm_decode(gdcm, stream, info, info.transfer_syntax, pixel_format), info, dtype)


def _gdcm_decode(gdcm: Any, stream: bytes, info: PixelLayout, syntax: str, pixel_format: Any) -> bytes:
    """One compressed frame through GDCM's own codecs (as pydicom's GDCM plugin sets it up); b"" on failure."""
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(stream)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())
    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((info.columns, info.rows, 1))
    image.SetDataElement(element)
    photometric = gdcm.PhotometricInterpretation.GetPIType(info.photometric)
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(photometric))
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.GetTSType(syntax)))
    image.SetPixelFormat(pixel_format)
    raw = image.GetBuffer()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw or b"")


def _pillow_grayscale(stream: bytes, info: PixelLayout) -> np.ndarray | None:
    """8-bit grayscale baseline JPEG through Pillow's libjpeg-turbo, 2 to 5 times as fast as GDCM: its default
    (islow) inverse DCT is bit-exact with the IJG libjpeg inside GDCM and DCMTK, and a grayscale image has no
    chroma upsampling where decoders could differ (tests/unit/test_pixels_fast.py compares them)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(stream), formats=("JPEG",)) as image:  # no probing of other formats
            if image.mode != "L" or image.size != (info.columns, info.rows):
                return None
            return np.array(image)
    except (OSError, ValueError, UnidentifiedImageError, SyntaxError):
        return None


def _charls_grayscale(stream: bytes, info: PixelLayout, dtype: np.dtype[Any]) -> np.ndarray | None:
    try:
        import jpeg_ls
    except ImportError:
        return None
    try:
        array = jpeg_ls.decode(np.frombuffer(stream, np.uint8))
    except (ValueError, RuntimeError):
        return None
    if array.shape != (info.rows, info.columns) or array.dtype.itemsize != dtype.itemsize:
        return None
    return np.ascontiguousarray(array).view(dtype)


def _sof_precision(stream: bytes) -> int | None:
    """The sample precision of a JPEG or JPEG-LS codestream (its SOF marker segment), None when not found."""
    position = 2 if stream[:2] == b"\xff\xd8" else -1
    while 0 <= position < len(stream) - 4:
        if stream[position] != 0xFF:
            return None
        marker = stream[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker in _SOF_MARKERS:
            return stream[position + 4]
        if marker == 0xDA:
            return None
        position += 2 + int.from_bytes(stream[position + 2:position + 4], "big")
    return None


def _fill_defaults(ds: Dataset) -> None:
    """Tags pydicom insists on and DCMTK defaults (e.g. PixelRepresentation missing in MultiframeWindowing.dcm)."""
    if "PixelRepresentation" not in ds:
        ds.PixelRepresentation = 0
    if "SamplesPerPixel" not in ds:
        ds.SamplesPerPixel = 1
    if "BitsStored" not in ds and "BitsAllocated" in ds:
        ds.BitsStored = ds.BitsAllocated
    if "PhotometricInterpretation" not in ds:
        ds.PhotometricInterpretation = "RGB" if ds.SamplesPerPixel == 3 else "MONOCHROME2"


_CORRUPTED: Final = ("less than expected", "truncated", "corrupt", "invalid", "misplaced", "unexpected end",
                     "no more frames", "not enough", "insufficient", "odd number", "too short")


def _decode_with_pydicom(ds: Dataset, info: PixelLayout, frame: int) -> np.ndarray:
    from pydicom.pixels import pixel_array

    index = frame if info.frames > 1 or "NumberOfFrames" in ds else None
    try:
        # YBR is converted to RGB by pydicom (as_rgb), like DCMTK's decoders do
        return pixel_array(ds, index=index, as_rgb=True)
    except NotImplementedError as exc:
        raise OrthancError(ErrorCode.NotImplemented, f"Cannot decode this image: {exc}") from None
    except (ValueError, RuntimeError, AttributeError, KeyError, IndexError, TypeError, struct.error, OSError,
            MemoryError, OverflowError, EOFError) as exc:
        message = str(exc)
        if isinstance(exc, RuntimeError) and "no pixel data decoder" in message.lower():
            raise OrthancError(ErrorCode.NotImplemented, f"Cannot decode this image: {message}") from None
        code = ErrorCode.BadFileFormat if any(word in message.lower() for word in _CORRUPTED) \
            or isinstance(exc, (RuntimeError, struct.error, EOFError, IndexError)) else ErrorCode.NotImplemented
        raise OrthancError(code, f"Cannot decode this image: {message.splitlines()[0] if message else exc}") from None


def _decode_jpeg12_with_gdcm(ds: Dataset, info: PixelLayout, frame: int) -> np.ndarray:
    """12-bit JPEG extended: pylibjpeg's libjpeg rejects these streams and pydicom's GDCM plugin refuses
    them up front, but GDCM's own JPEG codec decodes them (its output equals dcmdjpeg's)."""
    try:
        import gdcm
    except ImportError:
        raise OrthancError(ErrorCode.NotImplemented, "12-bit JPEG needs python-gdcm") from None
    try:
        stream = next(iter(_frames(ds, info, frame, frame + 1)))
    except (ValueError, StopIteration, struct.error) as exc:
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot read the JPEG frame: {exc}") from None
    pixel_format = gdcm.PixelFormat(info.samples, 16, info.bits_stored, info.bits_stored - 1, 1 if info.signed else 0)
    data = _gdcm_decode(gdcm, stream, info, str(JPEGExtended12Bit), pixel_format)
    expected = info.rows * info.columns * info.samples * 2
    if len(data) != expected:
        raise OrthancError(ErrorCode.BadFileFormat, "Cannot decode the 12-bit JPEG frame")
    array = np.frombuffer(data, dtype=np.int16 if info.signed else np.uint16)
    shape = (info.rows, info.columns, info.samples) if info.samples > 1 else (info.rows, info.columns)
    return array.reshape(shape)


def _to_orthanc_format(ds: Dataset, info: PixelLayout, array: np.ndarray) -> np.ndarray:
    if info.photometric == "PALETTE COLOR" and array.ndim == 2:
        return _apply_palette(ds, array)
    if array.ndim == 3:
        if array.dtype.itemsize == 1:
            return array.astype(np.uint8, copy=False)
        return array.astype(np.uint16, copy=False)
    if info.bits_stored == 1 or array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)  # Orthanc shows binary images (e.g. SEG) as 0/255
    if info.signed:
        return array.astype(np.int16 if info.bits_stored <= 16 else np.int32, copy=False)
    if info.bits_stored <= 8:
        return array.astype(np.uint8, copy=False)
    return array.astype(np.uint16 if info.bits_stored <= 16 else np.uint32, copy=False)


def _apply_palette(ds: Dataset, indices: np.ndarray) -> np.ndarray:
    """Palette colour -> RGB 8-bit, as Orthanc: each 16-bit LUT entry shifted down to 8 bits."""
    from pydicom.pixels.processing import apply_color_lut

    try:
        rgb = apply_color_lut(indices, ds)
        descriptor = ds.RedPaletteColorLookupTableDescriptor
        bits = int(descriptor[2])
    except (ValueError, AttributeError, KeyError, IndexError, TypeError) as exc:
        raise OrthancError(ErrorCode.NotImplemented, f"Inconsistent Palette Color Lookup Table: {exc}") from None
    if rgb.dtype == np.uint8 or bits <= 8:
        return rgb.astype(np.uint8)
    return (rgb >> (bits - 8)).astype(np.uint8)


# ------------------------------------------------------------------------------------------------ raw frames

def _frames(ds: Dataset, info: PixelLayout, start: int, stop: int) -> list[bytes]:
    """The encapsulated bitstreams of frames [start, stop)."""
    out = []
    for index, stream in enumerate(generate_frames(ds.PixelData, number_of_frames=info.frames)):
        if index >= stop:
            break
        if index >= start:
            out.append(stream)
    return out


def raw_frame(ds: Dataset, frame: int) -> tuple[bytes, str]:
    """ParsedDicomFile::GetRawFrame: the undecoded bytes of one frame and their MIME type (the whole stream for
    a video)."""
    info = layout(ds)
    _check_frame(info, frame)
    syntax = info.transfer_syntax
    if syntax in UNCOMPRESSED:
        size = info.rows * info.columns * info.samples * info.bits_allocated // 8
        if info.bits_allocated == 1:
            size = (info.rows * info.columns * info.samples + 7) // 8
        data = bytes(ds.PixelData)
        if len(data) < (frame + 1) * size:
            raise OrthancError(ErrorCode.BadFileFormat, "Pixel data too short for its frames")
        return data[frame * size:(frame + 1) * size], "application/octet-stream"
    try:
        if syntax in _MPEG_SYNTAXES:
            from pydicom.encaps import generate_fragments
            fragments = generate_fragments(ds.PixelData)
            next(fragments, None)  # the basic offset table
            return b"".join(fragments), _mime_of(syntax)
        streams = _frames(ds, info, frame, frame + 1)
    except (ValueError, struct.error, TypeError) as exc:
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot access a raw frame: {exc}") from None
    if not streams:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"No frame {frame}")
    return streams[0], _mime_of(syntax)


def _mime_of(syntax: str) -> str:
    """ParsedDicomFile::GetRawFrame: only baseline JPEG and JPEG 2000 get their own type; videos keep theirs."""
    if syntax == "1.2.840.10008.1.2.4.50":
        return "image/jpeg"
    if syntax in _JPEG2000:
        return "image/jp2"
    if syntax in ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101"):
        return "video/mpeg"
    if syntax in _MPEG_SYNTAXES:
        return "video/mp4"
    return "application/octet-stream"


# ------------------------------------------------------------------------------------------------ rescale

def _first_number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (list, tuple)) or hasattr(value, "__getitem__") and not isinstance(value, str):
            value = value[0]
        return float(value)
    except (TypeError, ValueError, IndexError):
        return None


def _per_frame_item(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    groups = ds.get("PerFrameFunctionalGroupsSequence")
    if not groups or frame >= len(groups):
        return None
    inner = groups[frame].get(sequence)
    return inner[0] if inner else None


def rescale(ds: Dataset, frame: int) -> tuple[float, float]:
    """ParsedDicomFile::GetRescale: (intercept, slope); (0, 1) for RT doses and when absent."""
    if str(ds.get("SOPClassUID", "")) == "1.2.840.10008.5.1.4.1.1.481.2":
        return 0.0, 1.0
    for item in (ds, _per_frame_item(ds, frame, "PixelValueTransformationSequence")):
        if item is None:
            continue
        intercept, slope = _first_number(item.get("RescaleIntercept")), _first_number(item.get("RescaleSlope"))
        if intercept is not None and slope is not None:
            return intercept, slope
    return 0.0, 1.0


def default_windowing(ds: Dataset, frame: int) -> tuple[float, float]:
    """ParsedDicomFile::GetDefaultWindowing: (center, width) from the tags, else from BitsStored."""
    for item in (ds, _per_frame_item(ds, frame, "FrameVOILUTSequence")):
        if item is None:
            continue
        center, width = _first_number(item.get("WindowCenter")), _first_number(item.get("WindowWidth"))
        if center is not None and width is not None:
            return center, width
    bits = _int(ds, "BitsStored", 0) or 8
    width = float(1 << bits)
    return width / 2.0, width


def is_monochrome1(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"


def decode_file_frame(data: bytes, frame: int = 0) -> np.ndarray:
    """Convenience for tests and tools: decode one frame of a DICOM file held in memory."""
    return decode_frame(load_dataset(io.BytesIO(data).getvalue()), frame)
