"""GET /instances/{id}/content[/{tag}/{index}/{tag}...]: browse a dataset like Orthanc does.

Sync and pure (thread-safe). The dataset must be read without stop_before_pixels when the
path may reach the pixel data or tags after it.
"""

from __future__ import annotations

import io
import struct
from typing import Final

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.sequence import Sequence as DicomSequence

from orthanc_lite.dicom.dicom_json import parse_tag
from orthanc_lite.dicom.values import STRING_VRS, element_vr, meta_tags

__all__ = ["list_content", "content_key", "pixel_data_fragments"]

PIXEL_DATA: Final = 0x7FE00010
_UNDEFINED_LENGTH: Final = 0xFFFFFFFF
_ITEM: Final = 0xFFFEE000
_SEQUENCE_DELIMITER: Final = 0xFFFEE0DD
# VR -> size of one value, for big endian data that DCMTK hands out in little endian
_SWAP_SIZES: Final[dict[str, int]] = {
    "US": 2, "SS": 2, "OW": 2, "AT": 2, "xs": 2,
    "UL": 4, "SL": 4, "FL": 4, "OF": 4, "OL": 4,
    "FD": 8, "OD": 8, "UV": 8, "SV": 8, "OV": 8,
}


def content_key(tag: int) -> str:
    """"0010-0010": how /content lists a tag."""
    return f"{tag >> 16:04x}-{tag & 0xFFFF:04x}"


def list_content(ds: Dataset, path: list[str]) -> list[str] | bytes:
    """Follow `path` (alternating tags and item indexes) into `ds`.

    Returns the child names (tags as "gggg-eeee", or item indexes "0", "1", ...) or, for a
    leaf, its value bytes as DCMTK gives them: strings lose their trailing padding and are
    padded again to an even length (space; NUL for UI), binary values are kept as stored
    (odd lengths padded with a NUL), numbers are little endian. Pixel data lists its fragments (the basic offset
    table is fragment 0); native pixel data is a single fragment "0". Tags may be written
    "0010-0010", "0010,0010", "00100010" or as a keyword. Raises ValueError for a malformed
    tag or index, KeyError for an absent tag, item or fragment.
    """
    current = ds
    i = 0
    while True:
        hidden = meta_tags(ds) if current is ds else frozenset()
        if i == len(path):
            return [content_key(int(tag)) for tag in sorted(current.keys()) if tag not in hidden]
        tag = parse_tag(path[i])
        if tag not in current or tag in hidden:
            raise KeyError(path[i])
        elem = current.get_item(tag)
        i += 1
        if elem is None:
            raise KeyError(path[i - 1])
        if tag == PIXEL_DATA:
            fragments = pixel_data_fragments(elem)
            if i == len(path):
                return [str(n) for n in range(len(fragments))]
            index = _index(path[i])
            if index >= len(fragments) or i + 1 != len(path):
                raise KeyError("/".join(path))
            return fragments[index]
        if isinstance(elem, RawDataElement) and (
                elem.VR == "SQ" or elem.length == _UNDEFINED_LENGTH
                or elem.VR is None and element_vr(elem, current) == "SQ"):
            elem = current[tag]  # pydicom parses the items
        if isinstance(elem.value, DicomSequence):
            items = elem.value
            if i == len(path):
                return [str(n) for n in range(len(items))]
            index = _index(path[i])
            if index >= len(items):
                raise KeyError("/".join(path))
            current = items[index]
            i += 1
            continue
        if i != len(path):
            raise KeyError("/".join(path))
        return _leaf_bytes(elem, current)


def _index(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"bad item index: {text!r}")
    return int(text)


def pixel_data_fragments(elem: DataElement | RawDataElement) -> list[bytes]:
    """Encapsulated pixel data: all items (offset table first); native: the whole value."""
    raw = elem.value if isinstance(elem.value, (bytes, bytearray)) else b""
    undefined = (elem.length == _UNDEFINED_LENGTH if isinstance(elem, RawDataElement)
                 else getattr(elem, "is_undefined_length", False))
    if not undefined:
        return [bytes(raw) + (b"\0" if len(raw) % 2 else b"")]
    fragments: list[bytes] = []
    stream = io.BytesIO(raw)
    while True:
        header = stream.read(8)
        if len(header) < 8:
            break
        group, element, length = struct.unpack("<HHI", header)
        tag = (group << 16) | element
        if tag == _SEQUENCE_DELIMITER:
            break
        if tag != _ITEM or length == _UNDEFINED_LENGTH:
            raise ValueError("corrupted encapsulated pixel data")
        fragments.append(stream.read(length))
    return fragments


def _leaf_bytes(elem: DataElement | RawDataElement, item: Dataset) -> bytes:
    vr = element_vr(elem, item)
    if isinstance(elem, RawDataElement):
        raw = bytes(elem.value or b"")
        if not elem.is_little_endian and vr in _SWAP_SIZES:
            raw = _swap(raw, _SWAP_SIZES[vr])
    else:
        raw = _encode(elem, item)
    if vr in STRING_VRS:
        # DCMTK: machine string (trailing padding removed), then padded to even length again
        if vr == "UI":
            raw = raw.translate(None, b" \t\n\v\f\r").rstrip(b"\0")
        else:
            raw = raw.rstrip(b" ")
        if len(raw) % 2:
            raw += b"\0" if vr == "UI" else b" "
    elif len(raw) % 2:
        raw += b"\0"  # DCMTK makes every value even on load, with a NUL
    return raw


def _swap(raw: bytes, size: int) -> bytes:
    usable = len(raw) - len(raw) % size
    out = bytearray(raw)
    for start in range(0, usable, size):
        out[start:start + size] = raw[start:start + size][::-1]
    return bytes(out)


def _encode(elem: DataElement, item: Dataset) -> bytes:
    """Value bytes of an element pydicom already decoded (implicit VR little endian)."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = True
    write_data_element(buffer, elem, item._character_set)
    return bytes(buffer.getvalue()[8:])
