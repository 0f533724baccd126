"""Flat DICOM maps for query/retrieve SCU (Orthanc's DicomMap): tag -> string (None = null/binary), their
Orthanc JSON formats, the C-FIND normalization per level and the manufacturer quirks. Pure; no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from ..model import ResourceLevel
from .dicom_json import parse_tag, tag_key, tag_name
from .values import dataset_codecs, element_string

DicomMap = dict[int, "str | None"]

QUERY_RETRIEVE_LEVEL: Final = 0x00080052
SPECIFIC_CHARACTER_SET: Final = 0x00080005
PATIENT_ID: Final = 0x00100020
STUDY_UID: Final = 0x0020000D
SERIES_UID: Final = 0x0020000E
SOP_UID: Final = 0x00080018
ACCESSION_NUMBER: Final = 0x00080050
SOP_CLASSES_IN_STUDY: Final = 0x00080062

# DICOM's QueryRetrieveLevel strings (IMAGE for instances), as ResourceTypeToDicomQueryRetrieveLevel.
DICOM_LEVEL: Final[dict[ResourceLevel, str]] = {
    ResourceLevel.PATIENT: "PATIENT",
    ResourceLevel.STUDY: "STUDY",
    ResourceLevel.SERIES: "SERIES",
    ResourceLevel.INSTANCE: "IMAGE",
}

# Orthanc's DicomTag::AddTagsForModule: the tags of the DICOM modules (PS3.3 C.7: Patient, General Study and
# Patient Study, General Series, SOP Common and General Image) that a normalized C-FIND keeps at each level
# (and below). Narrower than the main DICOM tags: e.g. Manufacturer or TimezoneOffsetFromUTC are dropped,
# as real Orthanc 1.10.1 drops them.
_MODULES: Final[dict[ResourceLevel, tuple[int, ...]]] = {
    ResourceLevel.PATIENT: (0x00100010, 0x00100020, 0x00100021, 0x00100030, 0x00100032, 0x00100040, 0x00101000,
                            0x00101001, 0x00102160, 0x00104000, 0x00100050, 0x00102201),
    ResourceLevel.STUDY: (0x00080020, 0x00080030, 0x00080050, 0x00080090, 0x00081030, 0x0020000D, 0x00200010,
                          0x00080096, 0x00081032, 0x00081048, 0x00081060, 0x00101010, 0x00101020, 0x00101030,
                          0x00102180, 0x001021B0),
    ResourceLevel.SERIES: (0x00080060, 0x0020000E, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050,
                           0x00181030, 0x0008103E, 0x00081070, 0x00180015, 0x00185100, 0x00400254, 0x00400253,
                           0x00102210),
    ResourceLevel.INSTANCE: (0x00080016, 0x00080018, 0x00200013, 0x00080008, 0x00200012, 0x00200020, 0x00080022,
                             0x00080032, 0x00080023, 0x00080033, 0x00080012, 0x00080013, 0x00204000, 0x00280008,
                             0x00280301),
}
_LEVEL_COUNTERS: Final[dict[ResourceLevel, tuple[int, ...]]] = {
    ResourceLevel.PATIENT: (0x00201200, 0x00201202, 0x00201204),
    ResourceLevel.STUDY: (0x00080061, 0x00201206, 0x00201208, SOP_CLASSES_IN_STUDY),
    ResourceLevel.SERIES: (0x00201209,),
    ResourceLevel.INSTANCE: (),
}


def module_tags(level: ResourceLevel) -> frozenset[int]:
    """The tags of `level` and of every level above it."""
    tags: set[int] = set()
    for lvl in ResourceLevel:
        if lvl <= level:
            tags.update(_MODULES[lvl])
    return frozenset(tags)


def normalize_find_query(level: ResourceLevel, fields: Mapping[int, str | None]) -> tuple[DicomMap, list[int]]:
    """NormalizeFindQuery: keep the tags a C-FIND at `level` may carry; also returns the ignored tags."""
    allowed = set(module_tags(level)) | set(_LEVEL_COUNTERS[level]) | {SPECIFIC_CHARACTER_SET}
    kept: DicomMap = {}
    ignored: list[int] = []
    for tag, value in fields.items():
        if tag in allowed:
            kept[tag] = value
        else:
            ignored.append(tag)
    return kept, ignored


def fix_wildcards(fields: Mapping[int, str | None], manufacturer: str) -> DicomMap:
    """ConvertQueryFields: a "*" becomes universal matching ("") for GenericNoUniversalWildcard (all tags)
    and GenericNoWildcardInDates (DA tags)."""
    out = dict(fields)
    if manufacturer not in ("GenericNoWildcardInDates", "GenericNoUniversalWildcard"):
        return out
    for tag, value in fields.items():
        if value != "*":
            continue
        if manufacturer == "GenericNoUniversalWildcard" or vr_of(tag) == "DA":
            out[tag] = ""
    return out


def add_level_keys(fields: DicomMap, level: ResourceLevel, manufacturer: str) -> DicomMap:
    """The return keys Orthanc adds to every C-FIND of `level` (and above), "*" for GE, and the level."""
    universal = "*" if manufacturer == "GE" else ""
    out = dict(fields)
    keys = {
        ResourceLevel.INSTANCE: (SOP_UID, SERIES_UID, ACCESSION_NUMBER, STUDY_UID, PATIENT_ID),
        ResourceLevel.SERIES: (SERIES_UID, ACCESSION_NUMBER, STUDY_UID, PATIENT_ID),
        ResourceLevel.STUDY: (ACCESSION_NUMBER, STUDY_UID, PATIENT_ID),
        ResourceLevel.PATIENT: (PATIENT_ID,),
    }[level]
    for tag in keys:
        out.setdefault(tag, universal)
    out[QUERY_RETRIEVE_LEVEL] = DICOM_LEVEL[level]
    return out


def vr_of(tag: int) -> str:
    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "LO"


ENCODING_TERMS: Final[dict[str, str]] = {
    "Ascii": "ISO_IR 6", "Utf8": "ISO_IR 192", "Latin1": "ISO_IR 100", "Latin2": "ISO_IR 101",
    "Latin3": "ISO_IR 109", "Latin4": "ISO_IR 110", "Latin5": "ISO_IR 148", "Cyrillic": "ISO_IR 144",
    "Windows1251": "ISO_IR 144", "Arabic": "ISO_IR 127", "Greek": "ISO_IR 126", "Hebrew": "ISO_IR 138",
    "Thai": "ISO_IR 166", "Japanese": "ISO_IR 13", "Chinese": "GB18030", "Korean": "ISO 2022 IR 149",
    "JapaneseKanji": "ISO 2022 IR 87", "SimplifiedChinese": "ISO 2022 IR 58",
}


def map_to_dataset(fields: Mapping[int, str | None], default_encoding: str = "Latin1") -> Dataset:
    """A C-FIND/C-MOVE/C-GET identifier from a map (ParsedDicomFile(DicomMap, DefaultEncoding)): a
    SpecificCharacterSet is added when the map has none."""
    ds = Dataset()
    charset = fields.get(SPECIFIC_CHARACTER_SET) or ENCODING_TERMS.get(default_encoding, "ISO_IR 100")
    ds.SpecificCharacterSet = charset
    for tag, value in sorted(fields.items()):
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        vr = vr_of(tag)
        if vr == "SQ":
            ds.add(DataElement(tag, vr, []))
            continue
        ds.add(DataElement(tag, vr, value or None))  # empty = universal matching
    return ds


def dataset_to_map(ds: Dataset) -> DicomMap:
    """ExtractDicomSummary of an answer: string tags (sequences dropped, binary values as None)."""
    codecs = dataset_codecs(ds)
    out: DicomMap = {}
    for elem in ds:
        tag = int(elem.tag)
        if elem.VR == "SQ" or tag >> 16 == 0x0000:
            continue
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
            out[tag] = None
            continue
        try:
            out[tag] = element_string(elem, codecs, elem.VR) or ""
        except Exception:  # noqa: BLE001 - a value that cannot be decoded is a null, as Orthanc's summary
            out[tag] = None
    return out


def map_to_json(fields: Mapping[int, str | None], fmt: str = "full") -> dict[str, Any]:
    """FromDcmtkBridge::ToJson(DicomMap) in the full, short or human format."""
    out: dict[str, Any] = {}
    for tag in sorted(fields):
        value = fields[tag]
        if fmt == "short":
            out[tag_key(tag)] = value
        elif fmt == "human":
            out[tag_name(tag)] = value
        else:
            out[tag_key(tag)] = {"Name": tag_name(tag), "Type": "String" if value is not None else "Null",
                                 "Value": value}
    return out


def map_from_json(data: Any, strict: bool = False) -> DicomMap:
    """A {tag name or "gggg,eeee": string} object as a map; ValueError for anything else. `strict` (the
    REST bodies, as SerializationToolbox::ReadMapOfTags) accepts strings only; otherwise numbers become
    strings and null stays null."""
    if not isinstance(data, dict):
        raise ValueError("a JSON object is expected")
    out: DicomMap = {}
    for key, value in data.items():
        tag = parse_tag(str(key))
        if isinstance(value, dict) and "Value" in value:  # the full format
            value = value["Value"]
        if strict and not isinstance(value, str):
            raise ValueError(f"the value of {key} must be a string")
        if value is not None and not isinstance(value, str):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = str(value)
            else:
                raise ValueError(f"the value of {key} must be a string")
        out[tag] = value
    return out


def level_of_map(fields: Mapping[int, str | None]) -> ResourceLevel:
    """The ResourceLevel named by a map's QueryRetrieveLevel."""
    text = (fields.get(QUERY_RETRIEVE_LEVEL) or "").strip()
    return ResourceLevel.parse(text)


def move_keys(level: ResourceLevel, answer: Mapping[int, str | None]) -> DicomMap:
    """DicomControlUserConnection::Move: the identifiers a C-MOVE/C-GET of one answer carries."""
    wanted = {
        ResourceLevel.PATIENT: (PATIENT_ID,),
        ResourceLevel.STUDY: (STUDY_UID,),
        ResourceLevel.SERIES: (STUDY_UID, SERIES_UID),
        ResourceLevel.INSTANCE: (STUDY_UID, SERIES_UID, SOP_UID),
    }[level]
    out: DicomMap = {}
    for tag in wanted:
        value = answer.get(tag)
        if value is None:
            raise KeyError(tag_name(tag))
        out[tag] = value
    return out
