"""A DICOM file as DICOM JSON (PS3.18 F.2), as Orthanc answers GET /instances/{id}/file with
Accept: application/dicom+json: uppercase "GGGGEEEE" keys, {"vr"} alone for an empty value, binary values
as InlineBinary, and no PixelData when it is encapsulated (Orthanc >= 1.12.6).

SYNC and pure: called through the cpu pool.
"""

from __future__ import annotations

import base64
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from .values import read_dataset

PIXEL_DATA = 0x7FE00010
_NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                              "1.2.840.10008.1.2.1.99"})


def file_to_dicomweb(data: bytes, default_encoding: str = "Latin1") -> dict[str, Any]:
    """The whole dataset of a DICOM file (meta header excluded) as DICOM JSON."""
    ds = read_dataset(data, default_encoding)
    meta = getattr(ds, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    encapsulated = bool(syntax) and syntax not in _NATIVE_SYNTAXES
    return dataset_to_dicomweb(ds, skip_pixel_data=encapsulated)


def dataset_to_dicomweb(ds: Dataset, skip_pixel_data: bool = False, top: bool = True) -> dict[str, Any]:
    """Group lengths are left out, as the meta header (but group 0002 tags inside sequence items stay)."""
    out: dict[str, Any] = {}
    for elem in ds:
        tag = int(elem.tag)
        if tag & 0xFFFF == 0 or (top and tag >> 16 == 0x0002) or (skip_pixel_data and tag == PIXEL_DATA):
            continue
        node = _element(elem)
        if tag == 0x00080005 and isinstance(node.get("Value"), list):
            # A leading empty SpecificCharacterSet component (ISO 2022 "\\ISO 2022 IR 87") is not listed.
            node["Value"] = [v for v in node["Value"] if v]
        out[f"{tag:08X}"] = node
    return out


def _element(elem: DataElement) -> dict[str, Any]:
    vr = str(elem.VR)
    if vr == "SQ":
        items = [dataset_to_dicomweb(item, top=False) for item in (elem.value or [])]
        return {"vr": vr, "Value": items} if items else {"vr": vr}
    try:
        node: dict[str, Any] = elem.to_json_dict(None, 0)
    except (ValueError, TypeError, OverflowError):  # a value pydicom cannot convert: the VR alone, not a 500
        return {"vr": vr}
    node.pop("BulkDataURI", None)
    if "InlineBinary" in node and not node["InlineBinary"]:
        node.pop("InlineBinary")
    if isinstance(node.get("InlineBinary"), bytes):
        node["InlineBinary"] = base64.b64encode(node["InlineBinary"]).decode("ascii")
    values = node.get("Value")
    if vr in _STRING_VRS and isinstance(values, list) and len(values) > 1:
        # An empty component of a multi-valued string ("A\\\\B") is null, as Orthanc writes it.
        node["Value"] = [None if v == "" else v for v in values]
    return node


_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})
