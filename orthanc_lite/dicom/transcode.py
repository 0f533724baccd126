"""Transfer syntax conversion of whole DICOM files (Orthanc's DcmtkTranscoder), for `/file?transcode`,
IngestTranscoding, the senders and archives.

Sync and pure: `transcode_file(data_or_path, target_syntax_uid, lossy_quality) -> bytes`. Decoding goes
through dicom/pixels.py; encoding uses pydicom's encoders (RLE; JPEG-LS through pyjpegls; JPEG 2000 through
pylibjpeg-openjpeg), Pillow for JPEG baseline, GDCM for JPEG lossless. As in Orthanc, a lossy target gets a
new SOPInstanceUID (and LossyImageCompression = 01); a lossless one keeps every UID.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterable
from typing import Final

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.filereader import dcmread
from pydicom.filewriter import dcmwrite
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

from ..errors import ErrorCode, OrthancError
from . import pixels

UNCOMPRESSED_TARGETS: Final = frozenset({ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                                         DeflatedExplicitVRLittleEndian})
LOSSY_TARGETS: Final = frozenset({JPEGBaseline8Bit, JPEG2000, JPEGLSNearLossless})
SUPPORTED_TARGETS: Final = UNCOMPRESSED_TARGETS | LOSSY_TARGETS | frozenset(
    {RLELossless, JPEGLSLossless, JPEG2000Lossless, JPEGLosslessSV1})


def is_lossy(syntax: str) -> bool:
    return syntax in LOSSY_TARGETS or syntax in ("1.2.840.10008.1.2.4.51",)


def can_transcode_to(syntax: str) -> bool:
    return syntax in SUPPORTED_TARGETS


def transcode_file(source: bytes | str | os.PathLike[str], target_syntax_uid: str, lossy_quality: int = 90) -> bytes:
    """The DICOM file `source` (bytes or a path) rewritten in `target_syntax_uid`. The source itself when it is
    already in that syntax. NotImplemented when the target or the image cannot be handled."""
    data = source if isinstance(source, (bytes, bytearray)) else _read(source)
    ds = pixels.load_dataset(bytes(data))
    current = pixels.ensure_transfer_syntax(ds)
    if current == target_syntax_uid and ds.preamble is not None:
        return bytes(data)
    return to_bytes(transcode_dataset(ds, target_syntax_uid, lossy_quality))


def _read(path: str | os.PathLike[str]) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def transcode_dataset(ds: Dataset, target: str, lossy_quality: int = 90) -> Dataset:
    """Convert `ds` in place to `target` and return it (pixels decoded and re-encoded as needed)."""
    target = str(target)
    if target not in SUPPORTED_TARGETS:
        raise OrthancError(ErrorCode.NotImplemented, f"Cannot transcode to transfer syntax {target}")
    if not 1 <= lossy_quality <= 100:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad lossy quality: {lossy_quality}")
    current = pixels.ensure_transfer_syntax(ds)
    if is_lossy(target) and target != current and pixels.PIXEL_DATA not in ds:
        # DCMTK's lossy encoders need an 8-bit image: Orthanc keeps such instances (PDF, SR) as they are
        raise OrthancError(ErrorCode.NotImplemented, f"No image to compress in {target}")
    source_little = ds.original_encoding[1] if ds.original_encoding[1] is not None else True
    native = False
    if pixels.PIXEL_DATA in ds and current != target:
        same_layout = current in pixels.UNCOMPRESSED and target in UNCOMPRESSED_TARGETS and \
            source_little == UID(target).is_little_endian
        if not same_layout:
            frames = [pixels.decode_frame(ds, i) for i in range(pixels.layout(ds).frames)]
            _store_native(ds, frames)
            native = True
            if target not in UNCOMPRESSED_TARGETS:
                _encode(ds, frames, target, lossy_quality)
    if source_little != UID(target).is_little_endian:
        _swap_words(ds, source_little, UID(target).is_little_endian, native)
    ds.file_meta.TransferSyntaxUID = UID(target)
    if is_lossy(target) and target != current:
        _mark_lossy(ds, target, lossy_quality)
    return ds


_WORD_SIZES: Final = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_words(ds: Dataset, source_little: bool, target_little: bool, native_pixels: bool) -> None:
    """pydicom writes OW/OF/... bytes as they are: swap them when the byte order changes (the pixel data that
    was just decoded is little endian whatever the source)."""
    for elem in ds.iterall():
        size = _WORD_SIZES.get(elem.VR)
        if size is None or not isinstance(elem.value, (bytes, bytearray)) or len(elem.value) % size:
            continue
        from_little = True if (elem.tag == pixels.PIXEL_DATA and native_pixels) else source_little
        if from_little != target_little:
            elem.value = np.frombuffer(elem.value, f"<u{size}").byteswap().tobytes()


def _store_native(ds: Dataset, frames: list[np.ndarray]) -> None:
    """Decoded frames back as native pixel data (little endian; the writer swaps for big endian)."""
    first = frames[0]
    color = first.ndim == 3
    for keyword in ("PixelData",):
        del ds[keyword]
    if color:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        for tag in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                    "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                    "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData"):
            if tag in ds:
                del ds[tag]
    bits = first.dtype.itemsize * 8
    if first.dtype.itemsize != ds.get("BitsAllocated", bits) // 8 or color:
        ds.BitsAllocated = bits
        if int(ds.get("BitsStored", bits)) > bits:
            ds.BitsStored = bits
            ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if first.dtype.kind == "i" else 0
    stacked = np.stack(frames) if len(frames) > 1 else first
    ds.PixelData = np.ascontiguousarray(stacked.astype(stacked.dtype.newbyteorder("<"), copy=False)).tobytes()
    ds["PixelData"].VR = "OB" if bits == 8 else "OW"
    ds["PixelData"].is_undefined_length = False
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian  # what the bytes now are (pydicom's encoders check it)


def _encode(ds: Dataset, frames: list[np.ndarray], target: str, quality: int) -> None:
    if target == JPEGBaseline8Bit:
        ds.PixelData = encapsulate([_jpeg_baseline(ds, f, quality) for f in frames])
        if frames[0].ndim == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
    elif target == JPEGLosslessSV1:
        ds.PixelData = _jpeg_lossless_gdcm(ds)  # already encapsulated, every frame
    else:
        j2k_cr = [max(1.0, (101 - quality) / 2.0)] if target == JPEG2000 else None
        jls_error = max(1, (100 - quality) // 10) if target == JPEGLSNearLossless else None
        try:
            ds.compress(target, generate_instance_uid=False, j2k_cr=j2k_cr, jls_error=jls_error)
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            raise OrthancError(ErrorCode.NotImplemented, f"Cannot encode to {target}: {exc}") from None
        return
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True


def _jpeg_baseline(ds: Dataset, frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    if frame.dtype != np.uint8:
        raise OrthancError(ErrorCode.NotImplemented, "JPEG baseline only encodes 8-bit images")
    buffer = io.BytesIO()
    if frame.ndim == 3:
        Image.fromarray(frame, "RGB").save(buffer, format="JPEG", quality=quality, subsampling=1)
    else:
        Image.fromarray(frame, "L").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _jpeg_lossless_gdcm(ds: Dataset) -> bytes:
    """JPEG lossless, first-order prediction (no Python package writes it but GDCM). GDCM's file-level API is
    used (reader -> ImageChangeTransferSyntax -> writer, through temporary files): building its images by hand
    from Python crashes the process when the SWIG objects are released in the wrong order."""
    try:
        import gdcm
    except ImportError:
        raise OrthancError(ErrorCode.NotImplemented, "JPEG lossless encoding needs python-gdcm") from None
    with tempfile.TemporaryDirectory(prefix="orthanc-lite-jpeg-") as folder:
        source, target = os.path.join(folder, "in.dcm"), os.path.join(folder, "out.dcm")
        with open(source, "wb") as f:
            f.write(to_bytes(ds))
        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        if not reader.Read():
            raise OrthancError(ErrorCode.NotImplemented, "GDCM cannot read this image")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGLosslessProcess14_1))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise OrthancError(ErrorCode.NotImplemented, "GDCM cannot encode this image as JPEG lossless")
        writer = gdcm.ImageWriter()
        writer.SetFileName(target)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise OrthancError(ErrorCode.NotImplemented, "GDCM cannot write the JPEG lossless image")
        encoded = dcmread(target, force=True)
        return bytes(encoded.PixelData)


def _mark_lossy(ds: Dataset, target: str, quality: int) -> None:
    """What DCMTK's lossy encoders record: a new SOPInstanceUID and the lossy compression attributes."""
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.LossyImageCompression = "01"
    method = {JPEGBaseline8Bit: "ISO_10918_1", JPEG2000: "ISO_15444_1", JPEGLSNearLossless: "ISO_14495_1"}
    ds.LossyImageCompressionMethod = method.get(UID(target), "ISO_10918_1")


def to_bytes(ds: Dataset) -> bytes:
    """Serialize with a file meta header in the dataset's (meta) transfer syntax."""
    buffer = io.BytesIO()
    syntax = UID(ds.file_meta.TransferSyntaxUID)
    if "MediaStorageSOPClassUID" not in ds.file_meta and "SOPClassUID" in ds:
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    if "MediaStorageSOPInstanceUID" not in ds.file_meta and "SOPInstanceUID" in ds:
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    if ds.preamble is None:
        ds.preamble = b"\0" * 128
    try:
        dcmwrite(buffer, ds, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian,
                 enforce_file_format=True)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise OrthancError(ErrorCode.InternalError, f"Cannot write the transcoded file: {exc}") from None
    return buffer.getvalue()


_SENDER_PREFERENCE: Final = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)


def syntax_for_peer(source: str, accepted: Iterable[str]) -> str | None:
    """For the senders (C-STORE, C-GET, peers): the syntax to send an instance in, given what the remote side
    accepts. The stored syntax when accepted (no transcoding); else an uncompressed one (explicit little endian
    first), as Orthanc falls back on; else the first accepted syntax we can encode; None when nothing fits."""
    offered = [str(s) for s in accepted]
    if source in offered:
        return source
    for preferred in _SENDER_PREFERENCE:
        if preferred in offered:
            return str(preferred)
    return next((syntax for syntax in offered if can_transcode_to(syntax)), None)
