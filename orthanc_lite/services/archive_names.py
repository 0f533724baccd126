"""Names inside ZIP archives, as Orthanc 1.13 lays them out (pure functions, no I/O).

Folders: `{PatientID} - {PatientName}/{AccessionNumber} - {StudyDescription}/{SeriesNumber} - {Modality} -
{SeriesDescription}/` (empty parts dropped, "Unknown Patient|Study|Series" when nothing is left), files
`CT000001.dcm` (the first two letters of the modality, then IndexInSeries when the numbers of the series are
unique, else the rank in that order). Every name comes from DICOM tags, so it is sanitized: no separator, no
control or reserved character, never "." or "..", hence no path traversal and no absolute path.
"""

from __future__ import annotations

import unicodedata
from typing import Final, Sequence

PATIENT_PARTS: Final = ("0010,0020", "0010,0010")             # PatientID, PatientName
STUDY_PARTS: Final = ("0008,0050", "0008,1030")               # AccessionNumber, StudyDescription
SERIES_PARTS: Final = ("0020,0011", "0008,0060", "0008,103e")  # SeriesNumber, Modality, SeriesDescription
MODALITY: Final = "0008,0060"
SEPARATOR: Final = " - "
MAX_NAME: Final = 200  # bytes per path component: under every file system's 255


def sanitize(text: str, allow_utf8: bool = False) -> str:
    """One path component from DICOM text: "^" and whitespace become one space; letters, digits, ".", "_"
    and "-" stay; everything else (slashes, ":", "*", control characters...) goes; non-ASCII letters stay only
    with ZipUseUtf8. Leading dots are removed, so the result is never "." or ".." nor a hidden file."""
    out: list[str] = []
    space = False
    for ch in unicodedata.normalize("NFC", text):
        if ch == "^" or ch.isspace() or ch in "/\\":
            if out and not space:
                out.append(" ")
            space = True
            continue
        keep = (ch.isascii() and (ch.isalnum() or ch in "._-")) or (allow_utf8 and not ch.isascii() and ch.isalnum())
        if keep:
            out.append(ch)
            space = False
    name = "".join(out).strip().lstrip(". ")
    while len(name.encode()) > MAX_NAME:
        name = name[:-1]
    return name.rstrip(" ")


def folder_name(tags: dict[str, str], parts: Sequence[str], unknown: str, allow_utf8: bool = False) -> str:
    """A patient, study or series folder: its non-empty parts joined by " - "."""
    values = [sanitize(tags.get(key, ""), allow_utf8) for key in parts]
    name = SEPARATOR.join(v for v in values if v)
    return name or unknown


def instance_format(modality: str) -> str:
    """The file name pattern of a series: the first two letters of its modality, then the number."""
    letters = [c.upper() for c in modality.strip() if c.isascii() and c.isalnum()][:2]
    width = 8 - len(letters)
    return "".join(letters) + "%0" + str(width) + "d.dcm"


def instance_numbers(indexes: Sequence[int]) -> list[int]:
    """The numbers in the file names of one series, given the instances' IndexInSeries in archive order:
    the IndexInSeries themselves when they are unique, else 1, 2, 3..."""
    if len(set(indexes)) == len(indexes) and all(i > 0 for i in indexes):
        return list(indexes)
    return list(range(1, len(indexes) + 1))


class UniqueNames:
    """Names already used in one folder: a repeated name gets "-2", "-3"... (Orthanc's HierarchicalZipWriter)."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def take(self, name: str) -> str:
        candidate = name
        n = 1
        while candidate.lower() in self._used:  # case-insensitive file systems must not merge two folders
            n += 1
            candidate = f"{name}-{n}"
        self._used.add(candidate.lower())
        return candidate
