"""DICOMDIR of a media archive (PS3.10 / PS3.3 F.4), with the records Orthanc's DicomDirWriter writes.

Sync and pure: record() reads one instance's header (cpu pool); encode() lays the records out PATIENT >
STUDY > SERIES > IMAGE and computes the byte offsets that link them, as dcmtk's dcmdump and pydicom's
FileSet expect.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import Final

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

MEDIA_STORAGE_DIRECTORY: Final = UID("1.2.840.10008.1.3.10")
FILE_SET_ID: Final = "ORTHANC_MEDIA"

_CHARSET = 0x00080005
# Tags copied from the instance into each record, as Orthanc's DicomDirWriter: 2 = always present (empty
# when the instance lacks it), 3 = when the instance has it (even empty), 1 = only when it has a value.
# The study date and time are type 1 with fallbacks.
_PATIENT: Final = ((0x00100010, 2), (0x00100020, 1))                      # PatientName, PatientID
_STUDY: Final = ((0x00080050, 2), (0x00081030, 2), (0x0020000D, 2), (0x00200010, 1))
_SERIES: Final = ((0x00080060, 2), (0x0020000E, 2), (0x00200011, 1))       # Modality, SeriesInstanceUID, Number
_SERIES_EXTENDED: Final = ((0x0008103E, 3),)                              # SeriesDescription
_IMAGE: Final = ((0x00200013, 2),)                                         # InstanceNumber


@dataclass
class InstanceRecords:
    """The four records of one instance (its patient/study/series records are used once per group)."""

    patient: Dataset
    study: Dataset
    series: Dataset
    image: Dataset


def _copy(record: Dataset, source: Dataset, tags: tuple[tuple[int, int], ...]) -> None:
    for tag, kind in tags:
        element = source.get(tag)
        if element is not None and (kind != 1 or element.value not in (None, "", b"")):
            record.add(element)
        elif kind == 2:
            record.add_new(tag, element.VR if element is not None else _vr(tag), "")


def _vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    return str(dictionary_VR(tag))


def _new_record(kind: str, source: Dataset) -> Dataset:
    record = Dataset()
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = kind
    charset = source.get(_CHARSET)
    if charset is not None and charset.value:
        record.add(charset)
    return record


def record(data: bytes | str, file_id: list[str], extended: bool) -> InstanceRecords:
    """The records of one instance (`data`: its bytes or a path), referenced as `file_id` (e.g. IMAGES/IM0)."""
    source = dcmread(io.BytesIO(data) if isinstance(data, bytes) else data, stop_before_pixels=True, force=True)
    patient = _new_record("PATIENT", source)
    _copy(patient, source, _PATIENT)
    study = _new_record("STUDY", source)
    for tag, fallbacks in ((0x00080020, (0x00080021, 0x00080022, 0x00080023)),
                           (0x00080030, (0x00080031, 0x00080032, 0x00080033))):
        value = next((source[t].value for t in (tag, *fallbacks) if t in source and source[t].value), "")
        study.add_new(tag, "DA" if tag == 0x00080020 else "TM", value)
    _copy(study, source, _STUDY)
    series = _new_record("SERIES", source)
    _copy(series, source, _SERIES + (_SERIES_EXTENDED if extended else ()))
    image = _new_record("IMAGE", source)
    meta = getattr(source, "file_meta", None) or FileMetaDataset()
    image.ReferencedFileID = file_id
    image.ReferencedSOPClassUIDInFile = meta.get("MediaStorageSOPClassUID") or source.get("SOPClassUID", "")
    image.ReferencedSOPInstanceUIDInFile = meta.get("MediaStorageSOPInstanceUID") or source.get("SOPInstanceUID", "")
    image.ReferencedTransferSyntaxUIDInFile = meta.get("TransferSyntaxUID") or ExplicitVRLittleEndian
    _copy(image, source, _IMAGE)
    return InstanceRecords(patient, study, series, image)


@dataclass
class _Node:
    record: Dataset
    children: dict[str, _Node] = field(default_factory=dict)


class DicomDirBuilder:
    """Collects the records of the instances in archive order, grouped by Orthanc's patient/study/series IDs."""

    def __init__(self) -> None:
        self._patients: dict[str, _Node] = {}

    def add(self, keys: tuple[str, str, str], records: InstanceRecords) -> None:
        patient = self._patients.setdefault(keys[0], _Node(records.patient))
        study = patient.children.setdefault(keys[1], _Node(records.study))
        series = study.children.setdefault(keys[2], _Node(records.series))
        series.children[str(len(series.children))] = _Node(records.image)

    def encode(self) -> bytes:
        """The DICOMDIR file: preamble, file meta, then the records linked by their byte offsets."""
        head = _file_head()
        ordered: list[tuple[_Node, list[_Node]]] = []  # (node, its siblings) in depth-first order

        def walk(siblings: list[_Node]) -> None:
            for node in siblings:
                ordered.append((node, siblings))
                walk(list(node.children.values()))

        roots = list(self._patients.values())
        walk(roots)
        top = _top_dataset(0, 0)
        start = len(head) + len(_encode(top)) + 12  # + the sequence's tag, VR, reserved and length
        offsets: dict[int, int] = {}
        position = start
        for node, _ in ordered:
            offsets[id(node)] = position
            position += 16 + len(_encode(node.record))  # item tag + length, record, item delimiter
        for node, siblings in ordered:
            index = next(i for i, s in enumerate(siblings) if s is node)
            following = siblings[index + 1] if index + 1 < len(siblings) else None
            node.record.OffsetOfTheNextDirectoryRecord = offsets[id(following)] if following else 0
            first_child = next(iter(node.children.values()), None)
            node.record.OffsetOfReferencedLowerLevelDirectoryEntity = offsets[id(first_child)] if first_child else 0
        top = _top_dataset(offsets[id(roots[0])] if roots else 0, offsets[id(roots[-1])] if roots else 0)
        out = bytearray(head)
        out += _encode(top)
        out += struct.pack("<HH2sHI", 0x0004, 0x1220, b"SQ", 0, 0xFFFFFFFF)
        for node, _ in ordered:
            out += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
            out += _encode(node.record)
            out += struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        out += struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
        return bytes(out)


def _top_dataset(first: int, last: int) -> Dataset:
    top = Dataset()
    top.FileSetID = FILE_SET_ID
    top.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = first
    top.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = last
    top.FileSetConsistencyFlag = 0
    return top


def _file_head() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MEDIA_STORAGE_DIRECTORY
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    return bytes(fp.getvalue())


def _encode(ds: Dataset) -> bytes:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return bytes(fp.getvalue())
