"""Modality worklists from a folder of `.wl` files, as Orthanc's ModalityWorklists sample plugin serves them.

Blocking (reads files): runs in the association thread, never on the loop. Matching follows Orthanc's
HierarchicalMatcher: every non-empty key of the query is a constraint (DICOM matching rules, PN
case-insensitive unless CaseSensitivePN), a sequence key matches when one item of the worklist's sequence
matches the query's item; the answer holds the query's keys with the worklist's values.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ..dicom.matching import TagConstraint, dicom_constraint, tag_vr
from ..dicom.values import (
    ENCODINGS,
    dataset_codecs,
    element_vr,
    read_dataset,
    tag_string,
)

logger = logging.getLogger(__name__)

SPECIFIC_CHARACTER_SET: Final = 0x00080005
SCHEDULED_PROCEDURE_STEP_SEQUENCE: Final = 0x00400100
SCHEDULED_STATION_AE_TITLE: Final = 0x00400001
_REFERENCED_SEQUENCES: Final = (0x00081110, 0x00081120)  # ReferencedStudySequence, ReferencedPatientSequence


@dataclass(frozen=True, slots=True)
class WorklistSettings:
    folder: str
    case_sensitive_pn: bool
    filter_issuer_aet: bool
    limit: int
    default_encoding: str


class _Matcher:
    """One level of Orthanc's HierarchicalMatcher: leaf constraints plus sub-matchers for sequences."""

    def __init__(self, query: Dataset, codecs: Sequence[str], case_sensitive_pn: bool) -> None:
        self.keys: list[tuple[int, str]] = []
        self.constraints: list[TagConstraint] = []
        self.sequences: dict[int, _Matcher | None] = {}
        for elem in query:
            tag = int(elem.tag)
            if tag >> 16 < 0x0008 or tag & 0xFFFF == 0 or tag == SPECIFIC_CHARACTER_SET:
                continue
            raw = query.get_item(elem.tag)
            vr = element_vr(raw, query) if raw is not None else "UN"
            if len(vr) != 2 or vr == "UN":
                vr = tag_vr(tag)
            if vr == "SQ":
                items = query[tag].value or []
                self.sequences[tag] = _Matcher(items[0], codecs, case_sensitive_pn) if len(items) else None
                continue
            self.keys.append((tag, vr))
            value = tag_string(query, tag, codecs)
            if value:
                constraint = dicom_constraint(tag, value, case_sensitive_pn, vr=vr)
                if constraint is not None:
                    self.constraints.append(constraint)

    def matches(self, item: Dataset, codecs: Sequence[str]) -> bool:
        for c in self.constraints:
            if not c.matches(tag_string(item, c.tag, codecs)):
                return False
        for tag, sub in self.sequences.items():
            if sub is None or sub.is_universal():
                continue
            if tag not in item:
                return False
            if not any(sub.matches(child, codecs) for child in (item[tag].value or [])):
                return False
        return True

    def is_universal(self) -> bool:
        return not self.constraints and all(s is None or s.is_universal() for s in self.sequences.values())

    def extract(self, item: Dataset, codecs: Sequence[str]) -> Dataset:
        out = Dataset()
        for tag, vr in self.keys:
            if tag in item:
                out.add(item[tag])
            else:
                out.add(DataElement(tag, vr, None if vr in ("US", "SS", "UL", "SL", "FL", "FD") else ""))
        for tag, sub in self.sequences.items():
            children = item[tag].value if tag in item else []
            if sub is None:
                out.add(DataElement(tag, "SQ", DicomSequence([])))
                continue
            kept = [sub.extract(child, codecs) for child in (children or []) if sub.matches(child, codecs)]
            out.add(DataElement(tag, "SQ", DicomSequence(kept)))
        return out


def _fix_query(query: Dataset) -> None:
    """DCMTK's HandleExistentButEmptyReferencedStudyOrPatientSequenceAttributes, as Orthanc's FindScp applies it."""
    for tag in _REFERENCED_SEQUENCES:
        if tag in query and query[tag].VR == "SQ":
            items = query[tag].value
            if len(items) == 1:
                item = items[0]
                cls = item.get("ReferencedSOPClassUID", None)
                inst = item.get("ReferencedSOPInstanceUID", None)
                if cls is not None and inst is not None and not str(cls) and not str(inst):
                    query[tag].value = DicomSequence([])


def _station_aets(worklist: Dataset, codecs: Sequence[str]) -> list[str]:
    if SCHEDULED_PROCEDURE_STEP_SEQUENCE not in worklist:
        return []
    out = []
    for item in worklist[SCHEDULED_PROCEDURE_STEP_SEQUENCE].value or []:
        value = tag_string(item, SCHEDULED_STATION_AE_TITLE, codecs)
        if value:
            out.append(value.strip())
    return out


def find_worklists(settings: WorklistSettings, query: Dataset, calling_aet: str) -> tuple[list[Dataset], bool]:
    """The answers to a Modality Worklist C-FIND, and whether they are complete (LimitAnswers)."""
    query._orthanc_default_encoding = settings.default_encoding
    _fix_query(query)
    query_codecs = dataset_codecs(query)
    matcher = _Matcher(query, query_codecs, settings.case_sensitive_pn)
    answers: list[Dataset] = []
    try:
        names = sorted(os.listdir(settings.folder))
    except OSError as exc:
        logger.error("Cannot read the worklists folder %s: %s", settings.folder, exc)
        return [], True
    for name in names:
        if not name.lower().endswith(".wl"):
            continue
        path = os.path.join(settings.folder, name)
        try:
            worklist = read_dataset(path, settings.default_encoding)
            codecs = dataset_codecs(worklist)
            if settings.filter_issuer_aet and calling_aet not in _station_aets(worklist, codecs):
                continue
            if not matcher.matches(worklist, codecs):
                continue
            answer = matcher.extract(worklist, codecs)
        except Exception as exc:  # noqa: BLE001 - a damaged worklist file must not break the others (logged)
            logger.warning("Cannot use the worklist file %s: %s", path, exc)
            continue
        charset = worklist.get("SpecificCharacterSet", None)
        if charset:
            answer.SpecificCharacterSet = charset
        else:
            term = ENCODINGS.get(settings.default_encoding, "")
            if term:
                answer.SpecificCharacterSet = term
        if settings.limit and len(answers) >= settings.limit:
            return answers, False
        answers.append(answer)
    return answers, True
