"""Main DICOM tags stored per level (FEATURES.md §6.1, Orthanc's DicomMap.cpp defaults) and the identifier tags."""

from __future__ import annotations

import functools
from typing import Final

from ..model import ResourceLevel

# (tag, name) in Orthanc's order; names are DCMTK's, as Orthanc prints them in MainDicomTags.
PATIENT_TAGS: Final[tuple[tuple[int, str], ...]] = (
    (0x00100010, "PatientName"),
    (0x00100020, "PatientID"),
    (0x00100030, "PatientBirthDate"),
    (0x00100040, "PatientSex"),
    (0x00101000, "OtherPatientIDs"),
)
STUDY_TAGS: Final[tuple[tuple[int, str], ...]] = (
    (0x00080020, "StudyDate"),
    (0x00080030, "StudyTime"),
    (0x00080050, "AccessionNumber"),
    (0x00080080, "InstitutionName"),
    (0x00080090, "ReferringPhysicianName"),
    (0x00081030, "StudyDescription"),
    (0x0020000D, "StudyInstanceUID"),
    (0x00200010, "StudyID"),
    (0x00321032, "RequestingPhysician"),
    (0x00321060, "RequestedProcedureDescription"),
    (0x00080201, "TimezoneOffsetFromUTC"),
)
SERIES_TAGS: Final[tuple[tuple[int, str], ...]] = (
    (0x00080021, "SeriesDate"),
    (0x00080031, "SeriesTime"),
    (0x00080060, "Modality"),
    (0x00080070, "Manufacturer"),
    (0x00081010, "StationName"),
    (0x0008103E, "SeriesDescription"),
    (0x00081070, "OperatorsName"),
    (0x00180010, "ContrastBolusAgent"),
    (0x00180015, "BodyPartExamined"),
    (0x00180024, "SequenceName"),
    (0x00181090, "CardiacNumberOfImages"),
    (0x00181030, "ProtocolName"),
    (0x00181400, "AcquisitionDeviceProcessingDescription"),
    (0x0020000E, "SeriesInstanceUID"),
    (0x00200011, "SeriesNumber"),
    (0x00200037, "ImageOrientationPatient"),
    (0x00200105, "NumberOfTemporalPositions"),
    (0x00201002, "ImagesInAcquisition"),
    (0x00400254, "PerformedProcedureStepDescription"),
    (0x00540081, "NumberOfSlices"),
    (0x00540101, "NumberOfTimeSlices"),
    (0x00541000, "SeriesType"),
    (0x00080201, "TimezoneOffsetFromUTC"),
    (0x00400244, "PerformedProcedureStepStartDate"),
    (0x00400245, "PerformedProcedureStepStartTime"),
)
INSTANCE_TAGS: Final[tuple[tuple[int, str], ...]] = (
    (0x00080012, "InstanceCreationDate"),
    (0x00080013, "InstanceCreationTime"),
    (0x00080018, "SOPInstanceUID"),
    (0x00200012, "AcquisitionNumber"),
    (0x00200013, "InstanceNumber"),
    (0x00200032, "ImagePositionPatient"),
    (0x00200037, "ImageOrientationPatient"),
    (0x00200100, "TemporalPositionIdentifier"),
    (0x00204000, "ImageComments"),
    (0x00280008, "NumberOfFrames"),
    (0x00541330, "ImageIndex"),
)

MAIN_TAGS: Final[dict[ResourceLevel, tuple[tuple[int, str], ...]]] = {
    ResourceLevel.PATIENT: PATIENT_TAGS,
    ResourceLevel.STUDY: STUDY_TAGS,
    ResourceLevel.SERIES: SERIES_TAGS,
    ResourceLevel.INSTANCE: INSTANCE_TAGS,
}

TAG_NAMES: Final[dict[int, str]] = {tag: name for level in MAIN_TAGS.values() for tag, name in level}
NAME_TO_TAG: Final[dict[str, int]] = {name: tag for tag, name in TAG_NAMES.items()}

# Tags that Orthanc normalizes (upper case) into its DicomIdentifiers table (ServerToolbox.cpp).
IDENTIFIER_TAGS: Final[dict[ResourceLevel, tuple[int, ...]]] = {
    ResourceLevel.PATIENT: (0x00100020, 0x00100010, 0x00100030),
    ResourceLevel.STUDY: (0x00100020, 0x00100010, 0x00100030, 0x0020000D, 0x00080050, 0x00081030, 0x00080020),
    ResourceLevel.SERIES: (0x0020000E,),
    ResourceLevel.INSTANCE: (0x00080018,),
}

# The DICOM identifier that names a resource at each level (for /tools/lookup and C-MOVE keys).
LEVEL_UID_TAG: Final[dict[ResourceLevel, int]] = {
    ResourceLevel.PATIENT: 0x00100020,
    ResourceLevel.STUDY: 0x0020000D,
    ResourceLevel.SERIES: 0x0020000E,
    ResourceLevel.INSTANCE: 0x00080018,
}


def tag_key(tag: int) -> str:
    """'gggg,eeee', lowercase hex: the key format of Orthanc's DICOM-as-JSON."""
    return f"{tag >> 16:04x},{tag & 0xFFFF:04x}"


@functools.cache
def signature(level: ResourceLevel) -> str:
    """The MainDicomTags signature of /system: the level's tags, sorted, joined with ';' (stored with every
    new resource, hence cached)."""
    tags = set(t for t, _ in MAIN_TAGS[level])
    if level is ResourceLevel.SERIES:
        tags.add(0x00400275)  # RequestAttributesSequence is a main tag since 1.12.5
    return ";".join(tag_key(t) for t in sorted(tags))
