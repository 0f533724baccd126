"""Orthanc's "DICOM-as-JSON" formats (full, short, human) and tag names/parsing.

Mirrors Orthanc's FromDcmtkBridge::DatasetToJson with the flags of GET /instances/{id}/tags:
binary values (OB/OW/UN/...) become Null, private and unknown tags are included, tags after
the pixel data are skipped at the top level, strings over `max_length` bytes become TooLong.
Tag names follow DCMTK's dictionary ("RETIRED_" prefix for retired tags, "GenericGroupLength",
"PrivateCreator", "Unknown Tag & Data"), taken from pydicom's dictionaries.
Sync and pure: safe to call from any worker thread.
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final, Mapping

from pydicom.datadict import (
    REPEATER_KEYWORDS,
    get_entry,
    get_private_entry,
    tag_for_keyword,
)
from pydicom._dicom_dict import RepeatersDictionary
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from orthanc_lite.dicom.values import (
    BINARY_VRS,
    STRING_VRS as _STRING_VRS,
    dataset_codecs,
    element_string,
    element_vr,
    meta_tags,
    raw_value_bytes,
)

__all__ = [
    "FORMATS",
    "UNKNOWN_TAG_NAME",
    "UserDictionary",
    "tag_key",
    "tag_name",
    "parse_tag",
    "private_creator_of",
    "dataset_to_json",
    "simplify_json",
]

FORMATS: Final[frozenset[str]] = frozenset({"full", "short", "human"})
UNKNOWN_TAG_NAME: Final = "Unknown Tag & Data"  # DCMTK's DcmTag_ERROR_TagName
PIXEL_DATA: Final = 0x7FE00010
MAX_TAG_LENGTH: Final = 256  # ORTHANC_MAXIMUM_TAG_LENGTH

# Tags of the "Dictionary" configuration option: (tag, private creator or "") -> (VR, name)
UserDictionary = Mapping[tuple[int, str], tuple[str, str]]

# Tags DCMTK knows but pydicom 3.0 does not (or names it differently).
# OtherPatientIDs is a main DICOM tag, named by Orthanc itself (DicomTag::GetMainTagsName);
# the others are retired in pydicom's (newer) dictionary but not in DCMTK's, as real Orthanc shows.
_NAME_OVERRIDES: Final[dict[int, str]] = {
    0x00060001: "CurrentFrameFunctionalGroupsSequence",
    0x00101000: "OtherPatientIDs",
    0x00380004: "ReferencedPatientAliasSequence",
    0x00701807: "WeightingLookupTableDescriptor",
    0x00701808: "WeightingLookupTableData",
    0x30040010: "RTDoseROISequence",
    0x30040012: "DoseValue",
    0x30060085: "ROIObservationLabel",
    0x30060088: "ROIObservationDescription",
    0x3008002B: "TreatmentTerminationCode",
    0x30100090: "RoboticBaseLocationIndicator",
}
_HEX_TAG: Final = re.compile(r"^([0-9A-Fa-f]{4})[,-]?([0-9A-Fa-f]{4})$")
_WORDS: Final = re.compile(r"[0-9A-Za-z]+")


def tag_key(tag: int) -> str:
    """"0010,0010": Orthanc's formatting of a tag (lowercase hex)."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


def tag_name(tag: int, private_creator: str | None = None,
             user_dictionary: UserDictionary | None = None) -> str:
    """The name Orthanc prints for `tag` (DCMTK dictionary spelling)."""
    group, element = tag >> 16, tag & 0xFFFF
    if user_dictionary:
        entry = user_dictionary.get((tag, private_creator or ""))
        if entry is not None:
            return entry[1]
    if element == 0 and group != 0xFFFE:
        if group in (0x0000, 0x0002):
            return "CommandGroupLength" if group == 0 else "FileMetaInformationGroupLength"
        if group % 2 == 1:
            return "IllegalGroupLength" if group <= 7 else "PrivateGroupLength"
        return "GenericGroupLength"
    if group % 2 == 1:
        if 0x0010 <= element <= 0x00FF:
            return "IllegalPrivateCreator" if group <= 7 else "PrivateCreator"
        if private_creator and group > 7 and element >= 0x1000:
            try:
                description = str(get_private_entry(tag, private_creator)[2])
            except KeyError:
                return UNKNOWN_TAG_NAME
            # pydicom says "Unknown" where DCMTK's private.dic mostly has no entry
            return _camel_case(description) if description != "Unknown" else UNKNOWN_TAG_NAME
        return UNKNOWN_TAG_NAME
    if tag in _NAME_OVERRIDES:
        return _NAME_OVERRIDES[tag]
    try:
        _, _, _, retired, keyword = get_entry(tag)
    except KeyError:
        return UNKNOWN_TAG_NAME
    if not keyword:
        return UNKNOWN_TAG_NAME
    return f"RETIRED_{keyword}" if retired else str(keyword)


def _camel_case(description: str) -> str:
    """DCMTK private.dic style name from a pydicom private-dictionary description."""
    return "".join(w[:1].upper() + w[1:] for w in _WORDS.findall(description))


def parse_tag(text: str) -> int:
    """"0010,0010", "0010-0010", "00100010" (any case) or a keyword such as "PatientName".

    Raises ValueError for anything else (Orthanc: UnknownDicomTag).
    """
    text = text.strip()
    match = _HEX_TAG.match(text)
    if match:
        return int(match.group(1) + match.group(2), 16)
    keyword = text[8:] if text.startswith("RETIRED_") else text
    if not keyword.isidentifier():
        raise ValueError(f"unknown DICOM tag: {text!r}")
    tag = tag_for_keyword(keyword)
    if tag is not None:
        return int(tag)
    if keyword in REPEATER_KEYWORDS:
        for mask, entry in RepeatersDictionary.items():
            if entry[4] == keyword:
                return int(mask.replace("x", "0"), 16)
    for tag, name in _NAME_OVERRIDES.items():
        if name == text:
            return tag
    raise ValueError(f"unknown DICOM tag: {text!r}")


def private_creator_of(ds: Dataset, tag: int) -> str | None:
    """The private creator that reserves `tag` in `ds` (same item), as DCMTK assigns it."""
    group, element = tag >> 16, tag & 0xFFFF
    if group % 2 == 0 or group <= 7 or group == 0xFFFF or element < 0x1000:
        return None
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in ds:
        return None
    creator = element_string(ds.get_item(creator_tag), ("latin_1",), "LO")
    return creator if creator else None


def dataset_to_json(
    ds: Dataset,
    fmt: str = "full",
    max_length: int = MAX_TAG_LENGTH,
    ignore_length: frozenset[int] = frozenset(),
    header: bool = False,
    *,
    binary_as_null: bool = True,
    has_pixel_data: bool = False,
    user_dictionary: UserDictionary | None = None,
    stop_after_pixel_data: bool = True,
) -> dict[str, Any]:
    """The dataset as Orthanc prints GET /instances/{id}/tags (`fmt` = full, short or human).

    full:  {"0010,0010": {"Name": "PatientName", "Type": "String", "Value": "X"}} with Type in
           String, Sequence (Value = list of dicts), Null, Binary, TooLong; private leaves get
           "PrivateCreator". short: {"0010,0010": "X"}. human: {"PatientName": "X"}.
    In short/human, Null/Binary/TooLong give None. `max_length` 0 means no limit; tags in
    `ignore_length` are never TooLong. `header` formats ds.file_meta (group 0002) instead,
    as Orthanc's /header does (ASCII only, no binary, private or unknown tags).
    `binary_as_null=False` gives Binary values as data URIs. `has_pixel_data` adds the
    PixelData Null entry when `ds` was read with stop_before_pixels and the file had pixels.
    `stop_after_pixel_data=False` keeps the top-level tags after the pixel data (?whole, 1.12.4).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown DICOM-as-JSON format: {fmt}")
    quirk = meta_tags(ds)
    if header:
        meta = getattr(ds, "file_meta", None) or Dataset()
        full = _item_to_full(meta, ("ascii",), max_length, ignore_length, 0,
                             header=True, binary_as_null=True, user_dictionary=user_dictionary)
        if quirk:
            extra = _item_to_full(ds, ("ascii",), max_length, ignore_length, 0, header=True,
                                  binary_as_null=True, user_dictionary=user_dictionary,
                                  only=quirk)
            full = dict(sorted({**full, **extra}.items()))
    else:
        full = _item_to_full(ds, dataset_codecs(ds), max_length, ignore_length, 0,
                             header=False, binary_as_null=binary_as_null,
                             user_dictionary=user_dictionary, skip=quirk,
                             stop_after_pixel_data=stop_after_pixel_data)
        if has_pixel_data and tag_key(PIXEL_DATA) not in full:
            full[tag_key(PIXEL_DATA)] = {"Name": "PixelData", "Type": "Null", "Value": None}
    return full if fmt == "full" else simplify_json(full, fmt)


def simplify_json(full: Mapping[str, Any], fmt: str = "human") -> dict[str, Any]:
    """Full format -> short ("0010,0010" keys) or human (name keys), as Orthanc simplifies."""
    result: dict[str, Any] = {}
    for key, node in full.items():
        out_key = key if fmt == "short" else node["Name"]
        kind = node["Type"]
        if kind == "String":
            result[out_key] = node["Value"]
        elif kind == "Sequence":
            result[out_key] = [simplify_json(item, fmt) for item in node["Value"]]
        else:
            result[out_key] = None
    return result


def _item_to_full(
    ds: Dataset,
    codecs: tuple[str, ...],
    max_length: int,
    ignore_length: frozenset[int],
    depth: int,
    *,
    header: bool,
    binary_as_null: bool,
    user_dictionary: UserDictionary | None,
    skip: frozenset[int] = frozenset(),
    only: frozenset[int] | None = None,
    stop_after_pixel_data: bool = True,
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for tag in map(int, sorted(ds.keys())):
        if depth == 0 and (stop_after_pixel_data and tag > PIXEL_DATA or tag in skip
                           or only is not None and tag not in only):
            continue  # StopAfterPixelData; meta-header quirk (values.meta_tags)
        elem = ds.get_item(tag)
        if elem is None:
            continue
        group = tag >> 16
        if header and group != 0x0002 and only is None:
            continue
        creator = private_creator_of(ds, tag) if group % 2 == 1 else None
        name = tag_name(tag, creator, user_dictionary)
        vr = _vr(elem, ds, creator, user_dictionary)
        if header and (group % 2 == 1 or name == UNKNOWN_TAG_NAME or vr in BINARY_VRS):
            continue
        key = tag_key(tag)
        if isinstance(elem, RawDataElement) and (vr == "SQ" or elem.length == 0xFFFFFFFF):
            elem = ds[tag]  # let pydicom parse the items (also UN of undefined length)
        value = elem.value
        if vr == "SQ" or isinstance(value, DicomSequence):
            items = value if isinstance(value, DicomSequence) else []
            result[key] = {
                "Name": name,
                "Type": "Sequence",
                "Value": [
                    _item_to_full(item, codecs, max_length, ignore_length, depth + 1,
                                  header=header, binary_as_null=binary_as_null,
                                  user_dictionary=user_dictionary)
                    for item in items
                ],
            }
            continue
        node: dict[str, Any] = {"Name": name}
        if creator is not None:
            node["PrivateCreator"] = creator
        node.update(_leaf(elem, vr, codecs, ds, tag, creator, max_length, ignore_length,
                          binary_as_null, user_dictionary))
        result[key] = node
    return result


def _vr(elem: DataElement | RawDataElement, ds: Dataset, creator: str | None,
        user_dictionary: UserDictionary | None) -> str:
    tag = int(elem.tag)
    if elem.VR is None:
        if user_dictionary:
            entry = user_dictionary.get((tag, creator or ""))
            if entry is not None:
                return entry[0]
        if creator is not None:
            try:
                vr = str(get_private_entry(tag, creator)[0])
            except KeyError:
                return "UN"
            return "OW" if " or " in vr else vr
    return element_vr(elem, ds)


def _dictionary_string_vr(tag: int, creator: str | None,
                          user_dictionary: UserDictionary | None) -> bool:
    """Whether DCMTK's dictionary gives a string VR for a tag stored as UN."""
    vr: str | None = None
    if user_dictionary and (tag, creator or "") in user_dictionary:
        vr = user_dictionary[(tag, creator or "")][0]
    elif creator is not None:
        try:
            vr = str(get_private_entry(tag, creator)[0])
        except KeyError:
            vr = None
    elif (tag >> 16) % 2 == 0:
        try:
            vr = str(get_entry(tag)[0])
        except KeyError:
            vr = None
    return vr in _STRING_VRS


def _leaf(
    elem: DataElement | RawDataElement,
    vr: str,
    codecs: tuple[str, ...],
    ds: Dataset,
    tag: int,
    creator: str | None,
    max_length: int,
    ignore_length: frozenset[int],
    binary_as_null: bool,
    user_dictionary: UserDictionary | None,
) -> dict[str, Any]:
    limit = 0 if tag in ignore_length else max_length
    if vr in BINARY_VRS:
        raw = raw_value_bytes(elem)
        # Orthanc: a UN value whose dictionary VR is a string, and that has no control
        # characters, is shown as its raw bytes (no padding removed, no charset conversion)
        if vr == "UN" and raw is not None and _dictionary_string_vr(tag, creator, user_dictionary) \
                and not any(b < 0x20 or b == 0x7F for b in raw):
            if limit and len(raw) > limit:
                return {"Type": "TooLong", "Value": None}
            try:
                raw_text = raw.decode("utf_8")
            except UnicodeDecodeError:
                raw_text = raw.decode("latin_1")  # what jsoncpp makes of non-UTF-8 bytes
            return {"Type": "String", "Value": raw_text}
        if binary_as_null or raw is None:
            return {"Type": "Null", "Value": None}
        uri = "data:application/octet-stream;base64," + base64.b64encode(raw).decode("ascii")
        return {"Type": "Binary", "Value": uri}
    text = element_string(elem, codecs, vr)
    if text is None:
        return {"Type": "Null", "Value": None}
    if limit and len(text.encode("utf_8")) > limit:
        return {"Type": "TooLong", "Value": None}
    return {"Type": "String", "Value": text}
