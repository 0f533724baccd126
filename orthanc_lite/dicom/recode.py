"""Rewrite an uncompressed DICOM file as Explicit VR Little Endian (what WADO-RS sends by default), with
pydicom only: no pixel decoding is involved for the three uncompressed syntaxes. Sync and pure."""

from __future__ import annotations

import io
from typing import Final

import pydicom
from pydicom.uid import ExplicitVRLittleEndian

UNCOMPRESSED: Final = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"})


def to_explicit_little(data: bytes) -> bytes:
    """The same dataset in 1.2.840.10008.1.2.1. Big endian 16/32-bit pixel data is byte-swapped."""
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    source = str(ds.file_meta.get("TransferSyntaxUID", "1.2.840.10008.1.2"))
    if source == ExplicitVRLittleEndian:
        return data
    if source not in UNCOMPRESSED:
        raise ValueError(f"not an uncompressed transfer syntax: {source}")
    if source == "1.2.840.10008.1.2.2" and 0x7FE00010 in ds:
        bits = int(ds.get("BitsAllocated", 8) or 8)
        if bits in (16, 32):
            import numpy as np

            raw = bytes(ds.PixelData)
            dtype = ">u2" if bits == 16 else ">u4"
            ds.PixelData = np.frombuffer(raw, dtype=dtype).astype(dtype.replace(">", "<")).tobytes()
            ds["PixelData"].VR = "OW"
    for elem in ds.iterall():
        _ = elem.value  # decode every value with the source byte order before writing
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return out.getvalue()
