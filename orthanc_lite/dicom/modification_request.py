"""Modification and anonymization requests (Orthanc's DicomModification::ParseModifyRequest and
ParseAnonymizationRequest): a JSON body -> a dicom/modification.py Modification, with Orthanc's errors.

SYNC and pure.
"""

from __future__ import annotations

from typing import Any

from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from .deid_profiles import DEFAULT_DICOM_VERSION
from .modification import (DATABASE_KEYS, PATIENT_ID, PATIENT_NAME, SERIES_UID, STUDY_UID, DicomPath,
                           Modification)


def _bool_member(body: dict[str, Any], name: str, default: bool) -> bool:
    if name not in body:
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BadFileFormat, f"Member \"{name}\" should be a Boolean value")
    return value


def _parse_list(m: Modification, value: Any, keep: bool, force: bool) -> None:
    if not isinstance(value, list):
        raise OrthancError(ErrorCode.BadRequest)
    for name in value:
        if not isinstance(name, str):
            raise OrthancError(ErrorCode.BadRequest)
        path = DicomPath.parse(name)
        if not path.prefix and not force and path.final in DATABASE_KEYS:
            raise OrthancError(ErrorCode.BadRequest, f"Marking tag \"{name}\" as to be "
                               f"{'kept' if keep else 'removed'} requires the \"Force\" option to be set to true")
        if keep:
            m.keep_path(path)
        else:
            m.remove_path(path)


def _parse_replacements(m: Modification, value: Any, force: bool) -> None:
    if not isinstance(value, dict):
        raise OrthancError(ErrorCode.BadRequest)
    for name, replacement in value.items():
        path = DicomPath.parse(name)
        if not path.prefix and not force and path.final in DATABASE_KEYS:
            raise OrthancError(ErrorCode.BadRequest, f"Marking tag \"{name}\" as to be replaced requires the "
                                                     "\"Force\" option to be set to true")
        m.replace_path(path, replacement)


def _private_creator(body: dict[str, Any], default: str) -> str:
    if "PrivateCreator" not in body:
        return default
    value = body["PrivateCreator"]
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadFileFormat, "Member \"PrivateCreator\" should be a string")
    return value


def _parse_remove_replace_keep(m: Modification, body: dict[str, Any], force: bool) -> None:
    """The members that modification and anonymization requests share, in Orthanc's order."""
    if "Remove" in body:
        _parse_list(m, body["Remove"], False, force)
    if "Replace" in body:
        _parse_replacements(m, body["Replace"], force)
    if "Keep" in body:
        _parse_list(m, body["Keep"], True, force)
    m.private_creator = _private_creator(body, m.private_creator)


def parse_modify_request(body: Any, level: ResourceLevel | None, default_private_creator: str = "") -> Modification:
    """`level` None: detected from what is replaced (the instance and bulk routes)."""
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BadFileFormat)
    m = Modification(private_creator=default_private_creator)
    force = _bool_member(body, "Force", False)
    if _bool_member(body, "RemovePrivateTags", False):
        m.set_remove_private_tags(True)
    _parse_remove_replace_keep(m, body, force)
    m.level = level if level is not None else detect_level(m)
    if not force:
        _check_identifier_changes(m)
    return m


def detect_level(m: Modification) -> ResourceLevel:
    if m.is_replaced(PATIENT_ID):
        return ResourceLevel.PATIENT
    if m.is_replaced(STUDY_UID):
        return ResourceLevel.STUDY
    if m.is_replaced(SERIES_UID):
        return ResourceLevel.SERIES
    return ResourceLevel.INSTANCE


def _check_identifier_changes(m: Modification) -> None:
    patient_replaced = m.is_replaced(PATIENT_ID) or PATIENT_ID in m.uids
    level = m.level
    if level is ResourceLevel.PATIENT and not patient_replaced:
        raise OrthancError(ErrorCode.BadRequest, "When modifying a patient, her PatientID is required to be modified.")
    word = {ResourceLevel.STUDY: "a study", ResourceLevel.SERIES: "a series", ResourceLevel.INSTANCE: "an instance"}
    if level is not ResourceLevel.PATIENT and patient_replaced:
        raise OrthancError(ErrorCode.BadRequest,
                           f"When modifying {word[level]}, the parent PatientID cannot be manually modified")
    if level in (ResourceLevel.SERIES, ResourceLevel.INSTANCE) and m.is_replaced(STUDY_UID):
        raise OrthancError(ErrorCode.BadRequest,
                           f"When modifying {word[level]}, the parent StudyInstanceUID cannot be manually modified")
    if level is ResourceLevel.INSTANCE and m.is_replaced(SERIES_UID):
        raise OrthancError(ErrorCode.BadRequest,
                           "When modifying an instance, the parent SeriesInstanceUID cannot be manually modified")


def parse_anonymization_request(body: Any, default_private_creator: str = "") -> tuple[Modification, bool]:
    """Returns the modification and whether the request set PatientName itself (else the caller picks one)."""
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BadFileFormat)
    m = Modification(private_creator=default_private_creator)
    force = _bool_member(body, "Force", False)
    version = DEFAULT_DICOM_VERSION
    if "DicomVersion" in body:
        if not isinstance(body["DicomVersion"], str):
            raise OrthancError(ErrorCode.BadFileFormat)
        version = body["DicomVersion"]
    m.setup_anonymization(version)
    if _bool_member(body, "KeepPrivateTags", False):
        m.set_remove_private_tags(False)
    _parse_remove_replace_keep(m, body, force)
    return m, PATIENT_NAME not in m.uids
