"""Parse one DICOM file into what the index needs: identifiers, main tags per level, built-in metadata.

SYNC and pure: called through the cpu pool. Never reads the pixel data.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Literal, Mapping

import pydicom
from pydicom.dataelem import RawDataElement

from .. import ids
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from .dicom_json import dataset_to_json
from .tags import MAIN_TAGS, tag_key
from .values import dataset_codecs, element_string, read_dataset


@dataclass(frozen=True, slots=True)
class ParsedInstance:
    patient_id: str          # the DICOM PatientID value ("" when absent)
    study_uid: str
    series_uid: str
    sop_uid: str
    patient_public_id: str
    study_public_id: str
    series_public_id: str
    instance_public_id: str
    tags: dict[ResourceLevel, dict[str, str]]  # "gggg,eeee" -> value, per level
    transfer_syntax: str
    sop_class_uid: str | None           # SOPClassUID of the dataset; None when absent (no SopClassUid metadata)
    index_in_series: str | None         # InstanceNumber, else ImageIndex, as the file writes it (spaces stripped)
    expected_instances: int | None
    pixel_data_offset: int | None       # None without a DICOM preamble, as Orthanc's stream reader
    pixel_data_vr: str | None           # only when the VR is not the one a reader would assume (PixelDataVR)
    main_sequences: str | None = None   # the series' main sequences as DICOM-as-JSON (MainDicomSequences)


class UnreadableDicom(OrthancError):
    """BadFileFormat for input that cannot be read as DICOM at all. A readable dataset that the store refuses
    (a missing or empty UID) raises a plain OrthancError: over DICOM, Orthanc answers the first 0xC000 and
    the second 0xA700."""

    def __init__(self, details: str) -> None:
        super().__init__(ErrorCode.BadFileFormat, details)


def parse_instance(source: str | os.PathLike[str] | bytes, default_encoding: str = "Latin1") -> ParsedInstance:
    """Read a file (path or bytes) up to its pixel data; OrthancError(BadFileFormat) for anything not DICOM."""
    try:
        with (io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")) as fp:
            preamble = fp.read(132)
            fp.seek(0)
            ds = read_dataset(fp, default_encoding, stop_before_pixels=True)
            # Orthanc finds the pixel data with a stream reader that needs the 128-byte preamble and "DICM".
            pixel_offset, pixel_vr = _pixel_data_position(fp, ds) if preamble[128:132] == b"DICM" else (None, None)
    except OrthancError:
        raise
    except Exception as exc:  # pydicom raises many exception types on garbage
        size = len(source) if isinstance(source, bytes) else _size(source)
        raise UnreadableDicom(f"Cannot parse an invalid DICOM file (size: {size} bytes)") from exc
    return summarize(ds, pixel_offset, pixel_vr)


def summarize(ds: pydicom.Dataset, pixel_offset: int | None = None, pixel_vr: str | None = None) -> ParsedInstance:
    """Build the ParsedInstance of an already-read dataset."""
    if len(ds) == 0 and not getattr(ds, "file_meta", None):
        raise UnreadableDicom("Not a DICOM file")
    tags: dict[ResourceLevel, dict[str, str]] = {}
    codecs = dataset_codecs(ds)
    # The raw elements by plain int tag, in one pass: `tag in ds` converts every probe to a pydicom Tag,
    # which cost more than the rest of this function. Decoding raw elements ourselves also costs less
    # than pydicom's value conversion.
    present = {int(tag): elem for tag, elem in ds.items()}
    if any(_truncated(elem) for elem in present.values()):
        raise UnreadableDicom("Cannot parse an invalid DICOM file (an element runs past the end of the data)")
    for level, level_tags in MAIN_TAGS.items():
        values: dict[str, str] = {}
        for tag, _name in level_tags:
            elem = present.get(tag)
            if elem is None:
                continue
            text = element_string(elem, codecs)
            if text is not None:
                values[tag_key(tag)] = text
        tags[level] = values

    patient = tags[ResourceLevel.PATIENT].get("0010,0020", "")
    study_uid = tags[ResourceLevel.STUDY].get("0020,000d", "")
    series_uid = tags[ResourceLevel.SERIES].get("0020,000e", "")
    sop_uid = tags[ResourceLevel.INSTANCE].get("0008,0018", "")
    for tag, value in ((0x0020000D, study_uid), (0x0020000E, series_uid), (0x00080018, sop_uid)):
        # As Orthanc's DicomInstanceHasher: an absent tag is InexistentTag (404), an empty one BadFileFormat.
        if tag not in present:
            raise OrthancError(ErrorCode.InexistentTag, f"Missing tag {tag_key(tag)}")
        if not value:
            raise OrthancError(ErrorCode.BadFileFormat,
                               "Missing StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID")

    meta = getattr(ds, "file_meta", None)
    transfer_syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not transfer_syntax:
        transfer_syntax = "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
    # As Orthanc: the SopClassUid metadata comes from the dataset only, never from the meta header.
    sop_class_elem = present.get(0x00080016)
    sop_class = element_string(sop_class_elem, codecs) if sop_class_elem is not None else None

    return ParsedInstance(
        patient_id=patient,
        study_uid=study_uid,
        series_uid=series_uid,
        sop_uid=sop_uid,
        patient_public_id=ids.patient_id(patient),
        study_public_id=ids.study_id(patient, study_uid),
        series_public_id=ids.series_id(patient, study_uid, series_uid),
        instance_public_id=ids.instance_id(patient, study_uid, series_uid, sop_uid),
        tags=tags,
        transfer_syntax=transfer_syntax.strip("\0 "),
        sop_class_uid=sop_class.strip("\0 ") if sop_class is not None else None,
        index_in_series=_index_in_series(tags),
        expected_instances=_expected_instances(tags),
        pixel_data_offset=pixel_offset,
        pixel_data_vr=_unexpected_vr(ds, present, pixel_vr, transfer_syntax.strip("\0 ")),
        main_sequences=_main_sequences(ds, present),
    )


def _truncated(elem: object) -> bool:
    """A raw element whose value is shorter than its declared length: pydicom reads past the end of the
    data without complaint, DCMTK (so Orthanc) does not."""
    if not isinstance(elem, RawDataElement) or not isinstance(elem.value, bytes) or elem.length == 0xFFFFFFFF:
        return False
    return len(elem.value) < elem.length


def _index_in_series(tags: dict[ResourceLevel, dict[str, str]]) -> str | None:
    """InstanceNumber if present (even empty), else ImageIndex, verbatim but for surrounding spaces: Orthanc stores
    the text ("000013" stays so); readers parse it as an integer when they need one."""
    instance = tags[ResourceLevel.INSTANCE]
    for key in ("0020,0013", "0054,1330"):
        if key in instance:
            return instance[key].strip()
    return None


_NATIVE_SYNTAXES = frozenset({"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
                              "1.2.840.10008.1.2.1.99"})


def _unexpected_vr(ds: pydicom.Dataset, present: Mapping[int, object], vr: str | None, syntax: str) -> str | None:
    """PixelDataVR is stored only when the VR of the pixel data is not the one a reader would assume: OW in an
    implicit-VR file, OB when encapsulated, else OW above 8 bits allocated and OB otherwise (so an 8-bit image
    written as OW gets "OW", as Orthanc does for Issue143.dcm or KarstenHilbertRF.dcm)."""
    if vr is None:
        return None
    if ds.is_implicit_VR:
        expected = "OW"
    elif syntax not in _NATIVE_SYNTAXES:
        expected = "OB"
    else:
        bits = ds.get(0x00280100).value if 0x00280100 in present else None
        expected = "OW" if isinstance(bits, int) and bits > 8 else "OB"
    return None if vr == expected else vr


# Sequences among the main tags (since Orthanc 1.12.5): kept apart, in the MainDicomSequences metadata.
_MAIN_SEQUENCES = (0x00400275,)  # RequestAttributesSequence (series)


def _main_sequences(ds: pydicom.Dataset, present: Mapping[int, object]) -> str | None:
    tags = [t for t in _MAIN_SEQUENCES if t in present]
    if not tags:
        return None
    sub = pydicom.Dataset()
    for attr in ("_parent_encoding", "_orthanc_default_encoding"):  # the default encoding (see read_dataset)
        if hasattr(ds, attr):
            setattr(sub, attr, getattr(ds, attr))
    if 0x00080005 in present:
        sub[0x00080005] = ds[0x00080005]  # the items' character set
    for tag in tags:
        sub[tag] = ds[tag]
    full = dataset_to_json(sub, "full")
    full.pop("0008,0005", None)
    return json.dumps(full, separators=(",", ":"), ensure_ascii=False)


def _expected_instances(tags: dict[ResourceLevel, dict[str, str]]) -> int | None:
    """As Orthanc's ComputeExpectedNumberOfInstances: ImagesInAcquisition x NumberOfTemporalPositions (both
    present), else NumberOfSlices x NumberOfTimeSlices (both present), else CardiacNumberOfImages."""
    series = tags[ResourceLevel.SERIES]
    for first, second in (("0020,1002", "0020,0105"), ("0054,0081", "0054,0101")):
        if first in series and second in series:
            a, b = _strict_int(series[first]), _strict_int(series[second])
            return a * b if a is not None and b is not None and a * b > 0 else None
    if "0018,1090" in series:
        cardiac = _strict_int(series["0018,1090"])
        return cardiac if cardiac is not None and cardiac > 0 else None
    return None


def _strict_int(text: str) -> int | None:
    """boost::lexical_cast<int64_t>: the whole text must be an integer."""
    try:
        return int(text) if text and text.strip() == text else None
    except ValueError:
        return None


def _pixel_data_position(fp: object, ds: pydicom.Dataset) -> tuple[int | None, str | None]:
    """After a stop_before_pixels read the file sits on the pixel data element header: peek at it."""
    try:
        start = fp.tell()  # type: ignore[attr-defined]
        header = fp.read(12)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        return None, None
    if len(header) < 8:
        return None, None
    little = getattr(ds, "is_little_endian", True) is not False
    order: Literal["little", "big"] = "little" if little else "big"
    group = int.from_bytes(header[0:2], order)
    element = int.from_bytes(header[2:4], order)
    if (group, element) != (0x7FE0, 0x0010):
        return None, None
    # Orthanc's PixelDataOffset is where the (7fe0,0010) element starts, header included.
    if ds.is_implicit_VR:
        return start, "OW"
    return start, header[4:6].decode("ascii", "replace")


def _size(path: str | os.PathLike[str]) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
