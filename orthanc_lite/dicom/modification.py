"""Modification and anonymization of one DICOM dataset, as Orthanc's DicomModification: a request (parsed by
modification_request.py: `Replace`, `Remove`, `Keep`, `RemovePrivateTags`, `Force`, `PrivateCreator`, anonymization
profiles) applied to pydicom datasets, mapping identifiers consistently across every instance it is applied to.

SYNC and pure (no asyncio, no I/O): called through the cpu pool. Not thread-safe: one Modification is applied
by one thread at a time (its UID map is shared by the whole job).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any, Final

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from .deid_profiles import ORTHANC_METHODS, PROFILES, REFERENCED_IMAGE_SEQUENCE, SOURCE_IMAGE_SEQUENCE
from .dicom_json import parse_tag

PATIENT_ID: Final = 0x00100020
PATIENT_NAME: Final = 0x00100010
STUDY_UID: Final = 0x0020000D
SERIES_UID: Final = 0x0020000E
SOP_UID: Final = 0x00080018
SOP_CLASS_UID: Final = 0x00080016
DEIDENTIFICATION_METHOD: Final = 0x00120063
PATIENT_IDENTITY_REMOVED: Final = 0x00120062
SPECIFIC_CHARACTER_SET: Final = 0x00080005
REFERENCED_FRAME_OF_REFERENCE_SEQUENCE: Final = 0x30060010
RT_REFERENCED_STUDY_SEQUENCE: Final = 0x30060012
REFERENCED_SOP_INSTANCE_UID: Final = 0x00081155
DATABASE_KEYS: Final = frozenset({PATIENT_ID, STUDY_UID, SERIES_UID, SOP_UID})

# DCMTK's root (Orthanc generates its UIDs below it): .1.2 studies, .1.3 series, .1.4 instances.
UID_PREFIXES: Final = {ResourceLevel.STUDY: "1.2.276.0.7230010.3.1.2.", ResourceLevel.SERIES: "1.2.276.0.7230010.3.1.3.",
                       ResourceLevel.INSTANCE: "1.2.276.0.7230010.3.1.4."}
# VRs whose values Orthanc's tag visitor sees as strings (the ones a "clear" empties inside sequences).
STRING_VRS: Final = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                               "UI", "UR", "UT"})
_NUMBER_VRS: Final = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int, "FL": float, "FD": float}
_BINARY_VRS: Final = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_PATH_ITEM: Final = re.compile(r"^(.+)\[([0-9]+|\*)\]$")


def generate_identifier(level: ResourceLevel, seed: str = "", original: str = "") -> str:
    """A new identifier as Orthanc makes one: a UUID for a PatientID, a DICOM UID below DCMTK's root otherwise.
    With a seed, the result is a function of (seed, level, original): a job that redoes an instance after a crash
    makes the same new instance again instead of a duplicate."""
    if level is ResourceLevel.PATIENT:
        if not seed:
            return str(uuidlib.uuid4())
        digest = hashlib.sha1(f"{seed}|{int(level)}|{original}".encode()).digest()
        return str(uuidlib.UUID(bytes=digest[:16], version=4))
    if not seed:
        return str(generate_uid(prefix=UID_PREFIXES[level]))
    return str(generate_uid(prefix=UID_PREFIXES[level], entropy_srcs=[seed, str(int(level)), original]))


# --- paths into sequences (Orthanc's DicomPath: "Seq[0].Other[*].Tag", as dcmodify) -----------------------


@dataclass(frozen=True, slots=True)
class DicomPath:
    prefix: tuple[tuple[int, int | None], ...]  # (sequence tag, item index or None for "*")
    final: int

    @classmethod
    def parse(cls, text: str) -> DicomPath:
        parts = text.split(".")
        prefix: list[tuple[int, int | None]] = []
        for part in parts[:-1]:
            match = _PATH_ITEM.match(part.strip())
            if match is None:
                raise OrthancError(ErrorCode.ParameterOutOfRange, f"Cannot parse DICOM path: {text}")
            index = None if match.group(2) == "*" else int(match.group(2))
            prefix.append((parse_tag_or_fail(match.group(1)), index))
        return cls(tuple(prefix), parse_tag_or_fail(parts[-1]))

    def format(self) -> str:
        items = [f"({t >> 16:04x},{t & 0xFFFF:04x})[{'*' if i is None else i}]" for t, i in self.prefix]
        return ".".join(items + [f"({self.final >> 16:04x},{self.final & 0xFFFF:04x})"])

    def matches(self, parents: list[tuple[int, int]], tag: int) -> bool:
        """Does this path name `tag` below the chain of (sequence, item index) `parents`, or name one of
        its enclosing sequences (a kept sequence keeps all it contains)?"""
        chain = parents + [(tag, -1)]
        full = list(self.prefix) + [(self.final, None)]
        if len(chain) < len(full):
            return False
        for (want_tag, want_index), (tag_, index) in zip(full, chain):
            if want_tag != tag_ or (want_index is not None and index != -1 and want_index != index):
                return False
        return True


def parse_tag_or_fail(text: str) -> int:
    """A tag name or "gggg,eeee"; UnknownDicomTag (500, as Orthanc) for anything else."""
    try:
        return parse_tag(text)
    except ValueError:
        raise OrthancError(ErrorCode.UnknownDicomTag, f"Unknown DICOM tag: \"{text}\"") from None


# --- the modification -------------------------------------------------------------------------------------


@dataclass
class Modification:
    level: ResourceLevel = ResourceLevel.INSTANCE
    is_anonymization: bool = False
    remove_private_tags: bool = False
    allow_manual_identifiers: bool = True
    keep_study_uid: bool = False
    keep_series_uid: bool = False
    keep_sop_uid: bool = False
    update_referenced_relationships: bool = True
    private_creator: str = ""
    keep: set[int] = field(default_factory=set)
    removals: set[int] = field(default_factory=set)
    clearings: set[int] = field(default_factory=set)
    removed_ranges: list[tuple[int, int, int, int]] = field(default_factory=list)
    uids: set[int] = field(default_factory=set)
    private_tags_to_keep: set[int] = field(default_factory=set)
    replacements: dict[int, Any] = field(default_factory=dict)
    keep_sequences: list[DicomPath] = field(default_factory=list)
    remove_sequences: list[DicomPath] = field(default_factory=list)
    sequence_replacements: list[tuple[DicomPath, Any]] = field(default_factory=list)
    uid_map: dict[tuple[int, str], str] = field(default_factory=dict)
    seed: str = field(default_factory=lambda: secrets.token_hex(16))  # new UIDs derive from it (see generate_identifier)

    # -- building (as DicomModification's Keep/Remove/Clear/Replace) --

    def _not_orthanc_anonymization(self) -> None:
        value = self.replacements.get(DEIDENTIFICATION_METHOD)
        if isinstance(value, str) and value in ORTHANC_METHODS:
            del self.replacements[DEIDENTIFICATION_METHOD]

    def keep_tag(self, tag: int) -> None:
        self.keep.add(tag)
        self.removals.discard(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)
        if tag == STUDY_UID:
            self.keep_study_uid = True
        elif tag == SERIES_UID:
            self.keep_series_uid = True
        elif tag == SOP_UID:
            self.keep_sop_uid = True
        elif tag >> 16 & 1:
            self.private_tags_to_keep.add(tag)
        self._not_orthanc_anonymization()

    def remove_tag(self, tag: int) -> None:
        self.removals.add(tag)
        self.clearings.discard(tag)
        self.uids.discard(tag)
        self.replacements.pop(tag, None)
        self.private_tags_to_keep.discard(tag)
        self._not_orthanc_anonymization()

    def replace_tag(self, tag: int, value: Any, safe_for_anonymization: bool = False) -> None:
        self.clearings.discard(tag)
        self.removals.discard(tag)
        self.uids.discard(tag)
        self.private_tags_to_keep.discard(tag)
        self.replacements[tag] = value
        if not safe_for_anonymization:
            self._not_orthanc_anonymization()

    def keep_path(self, path: DicomPath) -> None:
        if not path.prefix:
            self.keep_tag(path.final)
        self.keep_sequences.append(path)
        self._not_orthanc_anonymization()

    def remove_path(self, path: DicomPath) -> None:
        if not path.prefix:
            self.remove_tag(path.final)
        else:
            self.remove_sequences.append(path)
            self._not_orthanc_anonymization()

    def replace_path(self, path: DicomPath, value: Any, safe: bool = False) -> None:
        if not path.prefix:
            self.replace_tag(path.final, value, safe)
        else:
            self.sequence_replacements.append((path, value))
            if not safe:
                self._not_orthanc_anonymization()

    def set_remove_private_tags(self, removed: bool) -> None:
        self.remove_private_tags = removed
        if not removed:
            self._not_orthanc_anonymization()

    def set_level(self, level: ResourceLevel) -> None:
        self.uid_map.clear()
        self.level = level
        if level is not ResourceLevel.PATIENT:
            self._not_orthanc_anonymization()

    def is_removed(self, tag: int) -> bool:
        if tag in self.removals:
            return True
        group, element = tag >> 16, tag & 0xFFFF
        return any(g0 <= group <= g1 and e0 <= element <= e1 for g0, g1, e0, e1 in self.removed_ranges)

    def is_replaced(self, tag: int) -> bool:
        return tag in self.replacements

    def is_manually_modified(self, tag: int) -> bool:
        return tag in self.clearings or self.is_removed(tag) or tag in self.replacements

    def setup_anonymization(self, version: str) -> None:
        profile = PROFILES.get(version)
        if profile is None:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown DICOM version: {version}")
        self.is_anonymization = True
        self.keep.clear()
        self.replacements.clear()
        self.sequence_replacements.clear()
        self.private_tags_to_keep.clear()
        self.keep_sequences.clear()
        self.remove_sequences.clear()
        self.uid_map.clear()
        self.removals = set(profile.removals)
        self.clearings = set(profile.clearings)
        self.removed_ranges = list(profile.removed_ranges)
        self.uids = set(profile.uids)
        self.remove_private_tags = True
        self.level = ResourceLevel.PATIENT
        self.replacements[DEIDENTIFICATION_METHOD] = profile.method
        self.replacements[PATIENT_IDENTITY_REMOVED] = "YES"
        self.uids.update((PATIENT_ID, PATIENT_NAME))

    # -- identifiers --

    def map_identifier(self, original: str, level: ResourceLevel) -> str:
        key = (int(level), original.strip())
        mapped = self.uid_map.get(key)
        if mapped is None:
            mapped = generate_identifier(level, self.seed, key[1])
            self.uid_map[key] = mapped
        return mapped

    def _register_mapping(self, original: str, mapped: str, level: ResourceLevel) -> None:
        self.uid_map.setdefault((int(level), original.strip()), mapped)

    # -- applying --

    def apply(self, ds: Dataset) -> None:
        """Modify `ds` in place (Orthanc's DicomModification::Apply, steps in the same order)."""
        if any(self.is_removed(t) for t in DATABASE_KEYS):
            raise OrthancError(ErrorCode.BadRequest, "It is forbidden to remove one of the main Dicom identifiers")
        if not self.allow_manual_identifiers:
            self._check_manual_identifiers()
        if self.is_anonymization and self.update_referenced_relationships:
            for tag, level in ((STUDY_UID, ResourceLevel.STUDY), (SERIES_UID, ResourceLevel.SERIES),
                               (SOP_UID, ResourceLevel.INSTANCE)):
                if tag in self.replacements:
                    self._register_mapping(_string(ds, tag) or "", _replacement_string(self.replacements[tag]), level)
        present = ds._dict  # BaseTag keys hash as ints: plain dict lookups, no Tag() conversion per probe
        if self.remove_private_tags:
            for tag in [int(t) for t in present if t >> 16 & 1 and int(t) not in self.private_tags_to_keep]:
                del ds[tag]
        for tag in self.clearings.intersection(present):
            _clear(ds, tag)
        for tag in self.removals.intersection(present):
            del ds[tag]
        for tag, value in self.replacements.items():
            set_value(ds, tag, value, True, self.private_creator)
        for tag, level, keep in ((STUDY_UID, ResourceLevel.STUDY, self.keep_study_uid),
                                 (SERIES_UID, ResourceLevel.SERIES, self.keep_series_uid),
                                 (SOP_UID, ResourceLevel.INSTANCE, self.keep_sop_uid)):
            if self.level <= level and tag not in self.replacements and not keep:
                set_value(ds, tag, self.map_identifier(_string(ds, tag) or "", level), False, self.private_creator)
        if self.is_anonymization:
            if self.update_referenced_relationships:
                self._update_relationships(ds)
            else:
                for tag in list(self.uids) + [REFERENCED_IMAGE_SEQUENCE, SOURCE_IMAGE_SEQUENCE]:
                    if tag in ds and not self.is_manually_modified(tag):
                        del ds[tag]
        for path in self.remove_sequences:
            _remove_path(ds, path)
        for path, value in self.sequence_replacements:
            _replace_path(ds, path, value, self.private_creator)
        _sync_meta(ds)

    def _check_manual_identifiers(self) -> None:
        names = {STUDY_UID: "StudyInstanceUID", SERIES_UID: "SeriesInstanceUID", SOP_UID: "SopInstanceUID"}
        for level, forbidden in ((ResourceLevel.PATIENT, (STUDY_UID, SERIES_UID, SOP_UID)),
                                 (ResourceLevel.STUDY, (SERIES_UID, SOP_UID)), (ResourceLevel.SERIES, (SOP_UID,))):
            for tag in forbidden:
                if self.level is level and tag in self.replacements:
                    raise OrthancError(ErrorCode.BadRequest, f"When modifying a {level.type_name.lower()}, the "
                                                             f"{names[tag]} cannot be manually modified")

    def _update_relationships(self, ds: Dataset) -> None:
        """RelationshipsVisitor: first-level UIDs of the profile are mapped; inside sequences, the profile's
        removals, clearings and private tags apply too, and every reference to a UID follows its mapping."""
        for tag in self.uids.intersection(ds._dict):
            if not self.is_manually_modified(tag):
                value = _string(ds, tag)
                if value is None:
                    continue
                level = ResourceLevel.PATIENT if tag in (PATIENT_ID, PATIENT_NAME) else ResourceLevel.INSTANCE
                set_value(ds, tag, self.map_identifier(value, level), False, "")
        for tag in [int(t) for t in ds._dict]:
            if _vr_of(ds, tag) == "SQ":
                self._visit_sequence(ds[tag], [])

    def _visit_sequence(self, seq_elem: DataElement, parents: list[tuple[int, int]]) -> None:
        for index, item in enumerate(seq_elem.value or []):
            chain = parents + [(int(seq_elem.tag), index)]
            for tag in [int(t) for t in item._dict]:
                self._visit_nested(item, tag, chain)

    def _visit_nested(self, item: Dataset, tag: int, parents: list[tuple[int, int]]) -> None:
        if any(path.matches(parents, tag) for path in self.keep_sequences):
            return
        elem = item[tag]
        vr = elem.VR
        if self.is_anonymization:
            if self.remove_private_tags and tag >> 16 & 1:
                del item[tag]
                return
            if self.is_removed(tag):
                del item[tag]
                return
            if tag in self.clearings:
                if vr in STRING_VRS:
                    item[tag] = DataElement(tag, vr, "")
                else:
                    del item[tag]
                return
        if vr == "SQ":
            self._visit_sequence(elem, parents)
            return
        if vr not in STRING_VRS:
            return
        value = _string(item, tag)
        if value is None:
            return
        level: ResourceLevel | None = None
        if tag == STUDY_UID:
            level = ResourceLevel.STUDY
        elif tag == SERIES_UID:
            level = ResourceLevel.SERIES
        elif tag == SOP_UID:
            level = ResourceLevel.INSTANCE
        elif tag in self.uids:
            if tag in (PATIENT_ID, PATIENT_NAME):
                level = ResourceLevel.PATIENT
            elif (len(parents) == 2 and parents[0][0] == REFERENCED_FRAME_OF_REFERENCE_SEQUENCE
                  and parents[1][0] == RT_REFERENCED_STUDY_SEQUENCE and tag == REFERENCED_SOP_INSTANCE_UID):
                level = ResourceLevel.STUDY  # in RT-STRUCT, this "SOP instance" is a study
            else:
                level = ResourceLevel.INSTANCE
        if level is not None:
            item[tag] = DataElement(tag, vr, self.map_identifier(value, level))

    # -- serialization (jobs survive a restart) --

    def serialize(self) -> dict[str, Any]:
        maps: dict[str, dict[str, str]] = {"MapPatients": {}, "MapStudies": {}, "MapSeries": {}, "MapInstances": {}}
        names = ["MapPatients", "MapStudies", "MapSeries", "MapInstances"]
        for (level, original), mapped in self.uid_map.items():
            maps[names[level]][original] = mapped
        return {
            "Level": ResourceLevel(self.level).type_name, "IsAnonymization": self.is_anonymization,
            "RemovePrivateTags": self.remove_private_tags, "AllowManualIdentifiers": self.allow_manual_identifiers,
            "KeepStudyInstanceUID": self.keep_study_uid, "KeepSeriesInstanceUID": self.keep_series_uid,
            "KeepSOPInstanceUID": self.keep_sop_uid,
            "UpdateReferencedRelationships": self.update_referenced_relationships,
            "PrivateCreator": self.private_creator, "Seed": self.seed,
            "Keep": sorted(self.keep), "Removals": sorted(self.removals), "Clearings": sorted(self.clearings),
            "RemovedRanges": [list(r) for r in self.removed_ranges], "Uids": sorted(self.uids),
            "PrivateTagsToKeep": sorted(self.private_tags_to_keep),
            "Replacements": {f"{t:08x}": v for t, v in self.replacements.items()},
            "KeepSequences": [_path_json(p) for p in self.keep_sequences],
            "RemoveSequences": [_path_json(p) for p in self.remove_sequences],
            "SequenceReplacements": [[_path_json(p), v] for p, v in self.sequence_replacements],
            **maps,
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Modification:
        m = cls(level=ResourceLevel.parse(data["Level"]), is_anonymization=data["IsAnonymization"],
                remove_private_tags=data["RemovePrivateTags"], allow_manual_identifiers=data["AllowManualIdentifiers"],
                keep_study_uid=data["KeepStudyInstanceUID"], keep_series_uid=data["KeepSeriesInstanceUID"],
                keep_sop_uid=data["KeepSOPInstanceUID"],
                update_referenced_relationships=data["UpdateReferencedRelationships"],
                private_creator=data["PrivateCreator"], seed=str(data.get("Seed", "")))
        m.keep, m.removals, m.clearings = set(data["Keep"]), set(data["Removals"]), set(data["Clearings"])
        m.removed_ranges = [(a, b, c, d) for a, b, c, d in data["RemovedRanges"]]
        m.uids, m.private_tags_to_keep = set(data["Uids"]), set(data["PrivateTagsToKeep"])
        m.replacements = {int(k, 16): v for k, v in data["Replacements"].items()}
        m.keep_sequences = [_path_from_json(p) for p in data["KeepSequences"]]
        m.remove_sequences = [_path_from_json(p) for p in data["RemoveSequences"]]
        m.sequence_replacements = [(_path_from_json(p), v) for p, v in data["SequenceReplacements"]]
        for level, name in enumerate(["MapPatients", "MapStudies", "MapSeries", "MapInstances"]):
            for original, mapped in data[name].items():
                m.uid_map[(level, original)] = mapped
        return m


def _vr_of(ds: Dataset, tag: int) -> str:
    """The VR of an element without converting a raw one (implicit VR: the dictionary's)."""
    raw = ds.get_item(tag, keep_deferred=True)
    vr = getattr(raw, "VR", None)
    if vr is None or vr == "UN" and getattr(raw, "length", 0) == 0xFFFFFFFF:
        return "SQ" if vr is not None else tag_vr(tag)
    return str(vr)


def _path_json(path: DicomPath) -> list[Any]:
    return [[[t, i] for t, i in path.prefix], path.final]


def _path_from_json(data: list[Any]) -> DicomPath:
    return DicomPath(tuple((int(t), None if i is None else int(i)) for t, i in data[0]), int(data[1]))


# --- writing values (ParsedDicomFile::Replace) ------------------------------------------------------------


def _string(ds: Dataset, tag: int) -> str | None:
    if tag not in ds:
        return None
    value = ds[tag].value
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin_1").rstrip("\0 ")
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


def _replacement_string(value: Any) -> str:
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadParameterType)
    return value


def tag_vr(tag: int) -> str:
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    if vr in ("US or SS", "US or SS or OW"):
        return "US"
    if vr in ("OB or OW",):
        return "OW"
    return vr


def decode_data_uri(text: str) -> tuple[str, bytes] | None:
    """data:<mime>;base64,<payload> -> (mime, bytes); None if `text` is not such a URI."""
    if not text.startswith("data:"):
        return None
    head, sep, payload = text.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    try:
        return head[5:-7], base64.b64decode(payload, validate=False)
    except ValueError:
        return None


def set_value(ds: Dataset, tag: int, value: Any, decode_uri: bool, private_creator: str) -> None:
    """Insert or replace `tag` with a JSON value: a string (or data URI, decoded to bytes), or an array of
    objects for a sequence."""
    vr = ds[tag].VR if tag in ds else tag_vr(tag)
    if vr in ("UN",) and tag in ds:
        vr = tag_vr(tag)
    if tag >> 16 & 1 and tag & 0xFF00 and private_creator:
        _ensure_private_creator(ds, tag, private_creator)
    ds[tag] = _element(tag, vr, value, decode_uri, private_creator)
    if tag == SOP_UID or tag == SOP_CLASS_UID:
        _sync_meta(ds)


def _element(tag: int, vr: str, value: Any, decode_uri: bool, private_creator: str) -> DataElement:
    if vr == "SQ" or isinstance(value, list):
        if not isinstance(value, list):
            raise OrthancError(ErrorCode.BadParameterType, f"A sequence is expected for tag {tag:08x}")
        items = Sequence()
        for entry in value:
            if not isinstance(entry, dict):
                raise OrthancError(ErrorCode.BadParameterType)
            item = Dataset()
            for name, sub in entry.items():
                sub_tag = parse_tag_or_fail(name)
                item[sub_tag] = _element(sub_tag, tag_vr(sub_tag), sub, decode_uri, private_creator)
            items.append(item)
        return DataElement(tag, "SQ", items)
    if value is None:
        return DataElement(tag, vr, None)
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadParameterType, f"Bad Parameter type for tag {tag >> 16:04x},{tag & 0xFFFF:04x}")
    if decode_uri:
        decoded = decode_data_uri(value)
        if decoded is not None:
            return DataElement(tag, vr if vr in _BINARY_VRS else "OB", decoded[1])
    if vr in _NUMBER_VRS:
        try:
            numbers = [_NUMBER_VRS[vr](v) for v in value.split("\\") if v.strip()]
        except ValueError:
            raise OrthancError(ErrorCode.BadFileFormat, f"Cannot parse a number for tag {tag:08x}") from None
        return DataElement(tag, vr, numbers[0] if len(numbers) == 1 else numbers or None)
    if vr in _BINARY_VRS:
        return DataElement(tag, vr, value.encode("utf-8"))
    if vr == "AT":
        return DataElement(tag, vr, parse_tag_or_fail(value) if value else None)
    return DataElement(tag, vr, value)


def _ensure_private_creator(ds: Dataset, tag: int, creator: str) -> None:
    group, block = tag >> 16, (tag >> 8) & 0xFF
    creator_tag = (group << 16) | block
    if creator_tag not in ds:
        ds[creator_tag] = DataElement(creator_tag, "LO", creator)


def _clear(ds: Dataset, tag: int) -> None:
    vr = ds[tag].VR
    ds[tag] = DataElement(tag, vr, Sequence() if vr == "SQ" else None)


def _sync_meta(ds: Dataset) -> None:
    """DCMTK rewrites the meta header from the dataset when it saves: keep the media storage UIDs in step."""
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return
    if SOP_UID in ds:
        meta.MediaStorageSOPInstanceUID = _string(ds, SOP_UID)
    if SOP_CLASS_UID in ds:
        meta.MediaStorageSOPClassUID = _string(ds, SOP_CLASS_UID)


def _items(ds: Dataset, prefix: tuple[tuple[int, int | None], ...]) -> list[Dataset]:
    """The datasets a path prefix designates ("*" expands to every item)."""
    current = [ds]
    for seq_tag, index in prefix:
        nxt: list[Dataset] = []
        for item in current:
            if seq_tag not in item or item[seq_tag].VR != "SQ":
                continue
            seq = item[seq_tag].value or []
            if index is None:
                nxt.extend(seq)
            elif index < len(seq):
                nxt.append(seq[index])
        current = nxt
    return current


def _remove_path(ds: Dataset, path: DicomPath) -> None:
    for item in _items(ds, path.prefix):
        if path.final in item:
            del item[path.final]


def _replace_path(ds: Dataset, path: DicomPath, value: Any, private_creator: str) -> None:
    for item in _items(ds, path.prefix):
        set_value(item, path.final, value, True, private_creator)
