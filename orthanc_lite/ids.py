"""Orthanc public identifiers: SHA-1 of the DICOM identifiers, as DicomInstanceHasher computes them."""

from __future__ import annotations

import hashlib


def format_sha1(text: str) -> str:
    """SHA-1 of the UTF-8 text, as 5 groups of 8 lowercase hex digits joined by '-'."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))


def patient_id(patient: str) -> str:
    return format_sha1(patient)


def study_id(patient: str, study_uid: str) -> str:
    return format_sha1(f"{patient}|{study_uid}")


def series_id(patient: str, study_uid: str, series_uid: str) -> str:
    return format_sha1(f"{patient}|{study_uid}|{series_uid}")


def instance_id(patient: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    return format_sha1(f"{patient}|{study_uid}|{series_uid}|{sop_uid}")


def is_public_id(text: str) -> bool:
    """True for a string shaped like an Orthanc ID (44 chars, 5 groups of 8 hex)."""
    if len(text) != 44:
        return False
    parts = text.split("-")
    return len(parts) == 5 and all(len(p) == 8 and all(c in "0123456789abcdef" for c in p) for p in parts)
