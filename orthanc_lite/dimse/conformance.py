"""The DICOM conformance statement (GET /tools/dicom-conformance), written from the very tables the SCP
negotiates with (dimse/policy.py, dicom/transfer_syntaxes.py), so that it cannot drift from what is served."""

from __future__ import annotations

from functools import lru_cache
from typing import Iterable

from pydicom._uid_dict import UID_dictionary

from ..dicom.transfer_syntaxes import KNOWN_SYNTAXES
from . import policy


@lru_cache(maxsize=1)
def _pynetdicom_names() -> dict[str, str]:
    from pynetdicom import sop_class

    names: dict[str, str] = {}
    for table in (getattr(sop_class, n) for n in dir(sop_class) if n.startswith("_") and n.endswith("_CLASSES")):
        if isinstance(table, dict):
            names.update({str(uid): str(name) for name, uid in table.items()})
    return names


def _keyword(uid: str) -> str:
    entry = UID_dictionary.get(uid)
    if entry:
        return str(entry[4] or entry[0]).replace(" ", "")
    return _pynetdicom_names().get(uid, uid)


def _table(uids: Iterable[str]) -> list[str]:
    rows = sorted((_keyword(uid), uid) for uid in uids)
    width = max(len(name) for name, _ in rows) + 2
    return [f"  {name.ljust(width)}| {uid}" for name, uid in rows]


def _section(title: str, intro: str, uids: Iterable[str]) -> list[str]:
    rule = "-" * (len(title) + 2)
    return ["", "", rule, title, rule, "", intro, "", *_table(uids)]


@lru_cache(maxsize=1)
def statement() -> str:
    """The whole statement, as plain text."""
    title = "DICOM Conformance Statement of orthanc_lite"
    lines = ["=" * len(title), title, "=" * len(title)]
    lines += _section("Echo SCP Conformance", "These SOP Classes are supported as an SCP for C-ECHO:",
                      [policy.VERIFICATION])
    lines += _section("Store SCP Conformance", "These SOP Classes are supported as an SCP for C-STORE:",
                      policy.STORAGE_SOP_CLASSES)
    lines += _section("Find SCP Conformance", "These SOP Classes are supported as an SCP for C-FIND:",
                      [policy.PATIENT_ROOT_FIND, policy.STUDY_ROOT_FIND, policy.WORKLIST_FIND])
    lines += _section("Move SCP Conformance", "These SOP Classes are supported as an SCP for C-MOVE:",
                      [policy.PATIENT_ROOT_MOVE, policy.STUDY_ROOT_MOVE])
    lines += _section("Get SCP Conformance", "These SOP Classes are supported as an SCP for C-GET:",
                      [policy.PATIENT_ROOT_GET, policy.STUDY_ROOT_GET])
    lines += _section("Storage Commitment SCP Conformance",
                      "These SOP Classes are supported as an SCP for N-ACTION (storage commitment):",
                      [policy.STORAGE_COMMITMENT])
    lines += _section("Transfer Syntaxes", "These transfer syntaxes can be accepted by the SCP "
                      "(see the AcceptedTransferSyntaxes option):", KNOWN_SYNTAXES)
    return "\n".join(lines) + "\n"
