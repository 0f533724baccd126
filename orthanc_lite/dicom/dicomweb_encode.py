"""DICOM JSON and XML (PS3.18 F.2 / F.3), as Orthanc's DicomWebJsonVisitor writes them: the one encoder of the
DICOMweb server and of the core route GET /instances/{id}/file with Accept: application/dicom+json.

- `file_to_dicomweb(data)`: a whole DICOM file as the core route answers it (binary values inline).
- `dataset_to_dicomweb(ds, bulk_root)`: a parsed instance -> {"GGGGEEEE": {"vr", "Value" | "BulkDataURI"}}. Binary
  values (OB/OD/OF/OL/OV/OW/UN) become a BulkDataURI `{bulk_root}/{seq}/{1-based item}/.../{tag}` (lowercase hex
  tags, as the plugin builds them), or InlineBinary, or nothing. Group lengths are skipped; an empty value
  (binary ones too) has only its "vr". IS/DS are numbers, PN is {"Alphabetic", "Ideographic", "Phonetic"}, AT is "GGGGEEEE".
- `values_to_dicomweb(values, encoding)`: what QIDO-RS answers from stored main tags (tag -> string or None).
- `to_xml(dataset_json)`: the NativeDicomModel XML of one DICOM JSON object.
Sync and pure (pydicom only): called from the cpu pool.
"""

from __future__ import annotations

import base64
import functools
import math
import struct
from typing import Any, Final
from xml.sax.saxutils import escape, quoteattr

from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence

from .dicom_json import tag_name
from .values import (ENCODINGS, BINARY_VRS, dataset_codecs, element_string, element_vr, raw_value_bytes,
                     read_dataset)

PIXEL_DATA: Final = 0x7FE00010
SPECIFIC_CHARACTER_SET: Final = 0x00080005
# Binary modes (Orthanc's BinaryMode / the plugin's OtherBinaryMode)
BULK_DATA_URI: Final = "BulkDataURI"
INLINE_BINARY: Final = "InlineBinary"
IGNORE: Final = "Ignore"

_NUMBERS: Final[dict[str, tuple[str, int]]] = {
    "US": ("H", 2), "SS": ("h", 2), "UL": ("L", 4), "SL": ("l", 4),
    "UV": ("Q", 8), "SV": ("q", 8), "FL": ("f", 4), "FD": ("d", 8),
}
_SINGLE_VALUED: Final = frozenset({"LT", "ST", "UT", "UR"})  # backslash is not a delimiter there (PS3.5 6.2)
_NATIVE_SYNTAXES: Final = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                                     "1.2.840.10008.1.2.1.99"})


@functools.lru_cache(maxsize=8192)
def key(tag: int) -> str:
    """"0020000D": the DICOM JSON spelling of a tag."""
    return f"{tag >> 16:04X}{tag & 0xFFFF:04X}"


def file_to_dicomweb(data: bytes, default_encoding: str = "Latin1") -> dict[str, Any]:
    """The whole dataset of a DICOM file (meta header excluded) as DICOM JSON, binary values inline, without
    the PixelData when it is encapsulated (Orthanc >= 1.12.6)."""
    ds = read_dataset(data, default_encoding)
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if syntax and syntax not in _NATIVE_SYNTAXES and PIXEL_DATA in ds:
        del ds[PIXEL_DATA]
    return dataset_to_dicomweb(ds, "", INLINE_BINARY)


def dataset_to_dicomweb(ds: Dataset, bulk_root: str, binary_mode: str = BULK_DATA_URI,
                        pixel_data_vr: str | None = None) -> dict[str, Any]:
    """The DICOM JSON of one instance. `pixel_data_vr`: the dataset was read without its pixel data, which the
    file has (its VR): the PixelData attribute is still announced with its BulkDataURI, as Orthanc does."""
    codecs = dataset_codecs(ds)
    out = _item(ds, codecs, bulk_root, binary_mode, "")
    if pixel_data_vr is not None and key(PIXEL_DATA) not in out:
        node: dict[str, Any] = {"vr": pixel_data_vr if pixel_data_vr in BINARY_VRS else "OW"}
        if binary_mode == BULK_DATA_URI:
            node["BulkDataURI"] = f"{bulk_root}/7fe00010"
            out[key(PIXEL_DATA)] = node
        elif binary_mode == INLINE_BINARY:
            out[key(PIXEL_DATA)] = node  # the bytes were not read: announce it empty
    return out


def _item(ds: Dataset, codecs: tuple[str, ...], bulk_root: str, binary_mode: str, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for tag in map(int, sorted(ds.keys())):
        if tag & 0xFFFF == 0 or (tag >> 16 == 0x0002 and not path):
            continue  # group lengths; the meta header is not part of the dataset (inside items it is kept)
        # keep_deferred: a value left on disk by defer_size (the pixel data of a 256 MB instance) is read only
        # when it is written out, never to announce it with a BulkDataURI.
        elem = ds.get_item(tag, keep_deferred=True)
        if elem is None:
            continue
        vr = element_vr(elem, ds)
        if vr == "xs":
            vr = "US"
        if tag == PIXEL_DATA and _encapsulated(elem):
            vr = "OB"  # encapsulated pixel data: announced too (Orthanc >= 1.12.1 loads it as empty pixel data)
        if vr in BINARY_VRS and binary_mode != INLINE_BINARY:
            if binary_mode == IGNORE:
                continue
            if tag != PIXEL_DATA and _empty(elem):
                out[key(tag)] = {"vr": vr}  # an empty binary value has no bulk data (issue #195)
            else:  # the value itself is never read (it may be deferred)
                out[key(tag)] = {"vr": vr, "BulkDataURI": f"{bulk_root}{path}/{tag:08x}"}
            continue
        if isinstance(elem, RawDataElement) and (vr == "SQ" or elem.length == 0xFFFFFFFF or elem.value is None):
            elem = ds[tag]  # let pydicom parse the items (and encapsulated pixel data)
        value = elem.value
        if vr == "SQ" or isinstance(value, DicomSequence):
            node: dict[str, Any] = {"vr": "SQ"}
            items = value if isinstance(value, DicomSequence) else []
            if items:
                node["Value"] = [
                    _item(child, codecs, bulk_root, binary_mode, f"{path}/{tag:08x}/{i + 1}")
                    for i, child in enumerate(items)
                ]
            out[key(tag)] = node
            continue
        if vr in BINARY_VRS:
            if binary_mode == IGNORE:
                continue
            node = {"vr": vr}
            if binary_mode == BULK_DATA_URI:
                node["BulkDataURI"] = f"{bulk_root}{path}/{tag:08x}"
            else:
                raw = raw_value_bytes(elem)
                if raw is None and isinstance(value, (bytes, bytearray)):
                    raw = bytes(value)
                if raw:  # an empty value is the VR alone (issue #195)
                    node["InlineBinary"] = base64.b64encode(raw).decode("ascii")
            out[key(tag)] = node
            continue
        out[key(tag)] = leaf(elem, vr, codecs)
    return out


def _empty(elem: DataElement | RawDataElement) -> bool:
    if isinstance(elem, RawDataElement):
        return elem.length == 0
    return elem.value is None or (isinstance(elem.value, (bytes, bytearray)) and not elem.value)


def _encapsulated(elem: DataElement | RawDataElement) -> bool:
    if isinstance(elem, RawDataElement):
        return elem.length == 0xFFFFFFFF
    return bool(getattr(elem, "is_undefined_length", False))


def leaf(elem: DataElement | RawDataElement, vr: str, codecs: tuple[str, ...]) -> dict[str, Any]:
    """One non-sequence, non-binary attribute."""
    node: dict[str, Any] = {"vr": vr}
    if vr in _NUMBERS:
        values = _numbers(elem, vr)
        if values:
            node["Value"] = values
        return node
    if vr == "AT":
        tags = _attribute_tags(elem)
        if tags:
            node["Value"] = [key(tag) for tag in tags]
        return node
    text = element_string(elem, codecs, vr)
    if text:
        values = string_values(text, vr)
        if int(elem.tag) == SPECIFIC_CHARACTER_SET and len(values) > 1 and values[0] is None:
            values = values[1:]  # code extensions: the empty default repertoire is not listed (as Orthanc)
        node["Value"] = values
    return node


def _numbers(elem: DataElement | RawDataElement, vr: str) -> list[int | float]:
    if isinstance(elem, RawDataElement):
        raw = raw_value_bytes(elem) or b""
        fmt, size = _NUMBERS[vr]
        count = len(raw) // size
        if not count:
            return []
        unpacked = struct.unpack(("<" if elem.is_little_endian else ">") + fmt * count, raw[: count * size])
        return [_number(v) for v in unpacked]
    value = elem.value
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    return [_number(v) for v in items if isinstance(v, (int, float))]


def _attribute_tags(elem: DataElement | RawDataElement) -> list[int]:
    """Every value of an AT attribute (element_string() shows only the first one)."""
    if isinstance(elem, RawDataElement):
        raw = raw_value_bytes(elem) or b""
        count = len(raw) // 4
        words = struct.unpack(("<" if elem.is_little_endian else ">") + "HH" * count, raw[: count * 4])
        return [words[i] << 16 | words[i + 1] for i in range(0, len(words), 2)]
    value = elem.value
    items = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    return [int(v) for v in items if isinstance(v, int)]


def _number(value: int | float) -> int | float:
    if isinstance(value, float):
        if math.isfinite(value) and value == round(value) and abs(value) < 2**63:
            return int(round(value))  # FormatDouble: integral doubles are written as integers
        return value
    return int(value)


def string_values(text: str, vr: str) -> list[Any]:
    """A stored string ("\\"-separated values) as the "Value" array of DICOM JSON."""
    tokens = [text] if vr in _SINGLE_VALUED else text.split("\\")
    out: list[Any] = []
    for token in tokens:
        if vr == "PN":
            name: dict[str, str] = {}
            if token:
                parts = token.split("=")
                for label, part in zip(("Alphabetic", "Ideographic", "Phonetic"), parts):
                    name[label] = part
            out.append(name)
        elif vr == "IS":
            stripped = token.strip()
            try:
                out.append(int(stripped) if stripped else None)
            except ValueError:
                return []  # Orthanc ignores a tag whose content does not fit its VR
        elif vr == "DS":
            stripped = token.strip()
            try:
                out.append(_number(float(stripped)) if stripped else None)
            except ValueError:
                return []
        else:
            out.append(token if token else None)
    return out


def values_to_dicomweb(values: dict[int, tuple[str, str | None]], encoding: str) -> dict[str, Any]:
    """QIDO-RS answer of one resource: {tag: (vr, stored string or None)} -> DICOM JSON, keys sorted, with the
    SpecificCharacterSet of `encoding` (Orthanc creates the answer with its DefaultEncoding)."""
    out: dict[str, Any] = {}
    charset = ENCODINGS.get(encoding, "")
    if charset:
        values = {SPECIFIC_CHARACTER_SET: ("CS", charset), **values}
    for tag in sorted(values):
        vr, text = values[tag]
        node: dict[str, Any] = {"vr": vr}
        if text:
            if vr in _NUMBERS:
                try:
                    node["Value"] = [_number(float(v)) if vr in ("FL", "FD") else int(v) for v in text.split("\\")]
                except ValueError:
                    pass
            elif vr not in BINARY_VRS and vr != "SQ":
                items = string_values(text, vr)
                if items:
                    node["Value"] = items
        out[key(tag)] = node
    return out


def full_to_dicomweb(full: dict[str, Any]) -> dict[str, Any]:
    """Orthanc's "full" DICOM-as-JSON ({"gggg,eeee": {"Type", "Value"}}, e.g. a sequence answered by /tools/find)
    as DICOM JSON: strings get their dictionary VR, sequences recurse, binary and too-long values are left out."""
    from .matching import tag_vr

    out: dict[str, Any] = {}
    for tag_text in sorted(full):
        node = full[tag_text]
        tag = int(tag_text.replace(",", ""), 16)
        kind = node.get("Type")
        if kind == "Sequence":
            items = [full_to_dicomweb(item) for item in node.get("Value") or []]
            out[key(tag)] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
        elif kind in ("String", "Null"):
            vr = tag_vr(tag)
            out[key(tag)] = values_to_dicomweb({tag: (vr, node.get("Value"))}, "")[key(tag)]
    return out


# --- XML (PS3.19 NativeDicomModel) ------------------------------------------------------------------------

_XML_HEADER: Final = ('<?xml version="1.0" encoding="utf-8"?>\n'
                      '<NativeDicomModel xmlns="http://dicom.nema.org/PS3.19/models/NativeDICOM" '
                      'xsi:schemaLocation="http://dicom.nema.org/PS3.19/models/NativeDICOM" '
                      'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n')
_NAME_PARTS: Final = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


def to_xml(dataset: dict[str, Any]) -> str:
    """One DICOM JSON object as the XML part of a multipart/related; type="application/dicom+xml" answer."""
    lines: list[str] = [_XML_HEADER]
    _xml_item(dataset, lines, "  ")
    lines.append("</NativeDicomModel>\n")
    return "".join(lines)


def _xml_item(dataset: dict[str, Any], lines: list[str], indent: str) -> None:
    for tag_text in sorted(dataset):
        node = dataset[tag_text]
        vr = node.get("vr", "UN")
        keyword = tag_name(int(tag_text, 16))
        attrs = f'tag="{tag_text}" vr="{vr}"'
        if keyword and not keyword.startswith(("Unknown", "Private", "Generic", "Illegal")):
            attrs += f' keyword="{keyword}"'
        values = node.get("Value")
        if not values and "BulkDataURI" not in node and "InlineBinary" not in node:
            lines.append(f"{indent}<DicomAttribute {attrs} />\n")
            continue
        lines.append(f"{indent}<DicomAttribute {attrs}>\n")
        inner = indent + "  "
        if "BulkDataURI" in node:
            lines.append(f"{inner}<BulkData URI={quoteattr(str(node['BulkDataURI']))} />\n")
        elif "InlineBinary" in node:
            lines.append(f"{inner}<InlineBinary>{escape(str(node['InlineBinary']))}</InlineBinary>\n")
        for number, value in enumerate(values or [], start=1):
            if vr == "SQ":
                lines.append(f'{inner}<Item number="{number}">\n')
                _xml_item(value or {}, lines, inner + "  ")
                lines.append(f"{inner}</Item>\n")
            elif vr == "PN":
                if not value:
                    continue
                lines.append(f'{inner}<PersonName number="{number}">\n')
                for group in ("Alphabetic", "Ideographic", "Phonetic"):
                    if group in value:
                        lines.append(f"{inner}  <{group}>\n")
                        for part, text in zip(_NAME_PARTS, str(value[group]).split("^")):
                            lines.append(f"{inner}    <{part}>{escape(text)}</{part}>\n")
                        lines.append(f"{inner}  </{group}>\n")
                lines.append(f"{inner}</PersonName>\n")
            elif value is not None:
                lines.append(f'{inner}<Value number="{number}">{escape(str(value))}</Value>\n')
        lines.append(f"{indent}</DicomAttribute>\n")
