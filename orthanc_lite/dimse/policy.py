"""Who may associate and what they may ask, as Orthanc's OrthancApplicationEntityFilter decides it.

Pure functions over a `Snapshot` taken once per association (through the bridge, on the loop): the calling
AET's entries of DicomModalities, the DicomAlwaysAllow* switches, and the runtime transfer syntax / unknown
SOP class settings. Also builds the presentation contexts the SCP accepts for one association.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from pydicom.uid import UID
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import StorageServiceClass
from pynetdicom.sop_class import (
    _BASIC_WORKLIST_CLASSES,
    _QR_CLASSES,
    _STORAGE_CLASSES,
    _STORAGE_COMMITMENT_CLASSES,
    register_uid,
    uid_to_service_class,
)

from ..config import Modality, Settings
from ..dicom import transfer_syntaxes
from ..dicom.matching import wildcard_regex

logger = logging.getLogger(__name__)

VERIFICATION: Final = "1.2.840.10008.1.1"
PATIENT_ROOT_FIND: Final = _QR_CLASSES["PatientRootQueryRetrieveInformationModelFind"]
STUDY_ROOT_FIND: Final = _QR_CLASSES["StudyRootQueryRetrieveInformationModelFind"]
PATIENT_ROOT_MOVE: Final = _QR_CLASSES["PatientRootQueryRetrieveInformationModelMove"]
STUDY_ROOT_MOVE: Final = _QR_CLASSES["StudyRootQueryRetrieveInformationModelMove"]
PATIENT_ROOT_GET: Final = _QR_CLASSES["PatientRootQueryRetrieveInformationModelGet"]
STUDY_ROOT_GET: Final = _QR_CLASSES["StudyRootQueryRetrieveInformationModelGet"]
WORKLIST_FIND: Final = _BASIC_WORKLIST_CLASSES["ModalityWorklistInformationFind"]
STORAGE_COMMITMENT: Final = _STORAGE_COMMITMENT_CLASSES["StorageCommitmentPushModel"]
STORAGE_COMMITMENT_INSTANCE: Final = "1.2.840.10008.1.20.1.1"  # the well-known SOP instance

EXPLICIT_LE: Final = "1.2.840.10008.1.2.1"
IMPLICIT_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_BE: Final = "1.2.840.10008.1.2.2"
# Non-storage services accept the uncompressed syntaxes, Explicit LE first (CommandDispatcher.cpp).
GENERIC_SYNTAXES: Final = (EXPLICIT_LE, EXPLICIT_BE, IMPLICIT_LE)
# The uncompressed syntaxes in storage order: real Orthanc 1.10.1 picks Implicit LE over Big Endian when a
# context offers both.
UNCOMPRESSED: Final = (EXPLICIT_LE, IMPLICIT_LE, EXPLICIT_BE)

_PYNETDICOM_STORAGE: Final = frozenset(str(uid) for uid in _STORAGE_CLASSES.values())


def _storage_sop_classes() -> frozenset[str]:
    """pynetdicom's storage classes plus the retired / trial / non-patient ones DCMTK's list also has
    (e.g. Ultrasound Image Storage (Retired), which real scanners still send)."""
    from pydicom._uid_dict import UID_dictionary

    out = set(_PYNETDICOM_STORAGE)
    for uid, entry in UID_dictionary.items():
        name, kind = entry[0], entry[1]
        if kind == "SOP Class" and "Storage" in name and "Commitment" not in name:
            out.add(uid)
    return frozenset(out)


STORAGE_SOP_CLASSES: Final = _storage_sop_classes()


class Request(enum.Enum):
    """Orthanc's DicomRequestType."""

    ECHO = "Echo"
    STORE = "Store"
    FIND = "Find"
    FIND_WORKLIST = "FindWorklist"
    GET = "Get"
    MOVE = "Move"
    N_ACTION = "NAction"
    N_EVENT_REPORT = "NEventReport"


_ALWAYS_ALLOW: Final[dict[Request, str]] = {
    Request.ECHO: "DicomAlwaysAllowEcho",
    Request.STORE: "DicomAlwaysAllowStore",
    Request.FIND: "DicomAlwaysAllowFind",
    Request.FIND_WORKLIST: "DicomAlwaysAllowFindWorklist",
    Request.GET: "DicomAlwaysAllowGet",
    Request.MOVE: "DicomAlwaysAllowMove",
}

_MODALITY_FLAG: Final[dict[Request, str]] = {
    Request.ECHO: "AllowEcho",
    Request.STORE: "AllowStore",
    Request.FIND: "AllowFind",
    Request.FIND_WORKLIST: "AllowFindWorklist",
    Request.GET: "AllowGet",
    Request.MOVE: "AllowMove",
    Request.N_ACTION: "AllowNAction",
    Request.N_EVENT_REPORT: "AllowEventReport",
}


def same_aet(a: str, b: str, strict: bool) -> bool:
    """OrthancConfiguration::IsSameAETitle: case-insensitive unless StrictAetComparison."""
    return a == b if strict else a.lower() == b.lower()


def modalities_with_aet(modalities: Mapping[str, Modality], aet: str, strict: bool) -> tuple[Modality, ...]:
    """The DicomModalities entries whose AET is `aet`, in symbolic-name order (Orthanc keeps a std::map)."""
    return tuple(m for _, m in sorted(modalities.items()) if same_aet(aet, m.AET, strict))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the association thread needs to decide, taken once on the loop."""

    calling_aet: str
    called_aet: str
    remote_ip: str
    modalities: tuple[Modality, ...]   # the DicomModalities entries with the calling AET
    always_allow: frozenset[Request]
    check_host: bool
    check_called_aet: bool
    local_aet: str
    strict_aet: bool
    storage_syntaxes: frozenset[str]
    unknown_sop_class_accepted: bool
    accepted_sop_classes: tuple[str, ...] | None
    rejected_sop_classes: tuple[str, ...]
    worklists: bool

    def called_aet_ok(self) -> bool:
        """DicomServer::IsMyAETitle: any called AET unless DicomCheckCalledAet."""
        return not self.check_called_aet or same_aet(self.called_aet, self.local_aet, self.strict_aet)

    def connection_allowed(self) -> bool:
        """IsAllowedConnection: anyone if some DicomAlwaysAllow* is on, else a known AET (and host)."""
        if self.always_allow:
            return True
        if not self.modalities:
            logger.warning('Modality "%s" is not listed in the "DicomModalities" configuration option',
                           self.calling_aet)
            return False
        first = self.modalities[0]
        if self.check_host and self.remote_ip != first.Host:
            logger.warning('Forbidding access from AET "%s" given its hostname (%s) does not match the '
                           '"DicomModalities" configuration option (%s was expected)',
                           self.calling_aet, self.remote_ip, first.Host)
            return False
        return True

    def request_allowed(self, request: Request) -> bool:
        """IsAllowedRequest, including several modalities sharing one AET."""
        if request in self.always_allow:
            return True
        flag = _MODALITY_FLAG[request]
        if not self.modalities:
            logger.warning('DICOM authorization rejected for AET %s on IP %s: This AET is not listed in '
                           'configuration option "DicomModalities"', self.calling_aet, self.remote_ip)
            return False
        if len(self.modalities) == 1:
            only = self.modalities[0]
            if self.check_host and self.remote_ip != only.Host:
                logger.warning("DICOM authorization rejected for AET %s on IP %s: its IP address should be %s",
                               self.calling_aet, self.remote_ip, only.Host)
                return False
            if getattr(only, flag):
                return True
            _report_disallowed(self, request)
            return False
        allowed_for_all = True
        for modality in self.modalities:
            if getattr(modality, flag):
                if self.check_host and modality.Host == self.remote_ip:
                    return True
            else:
                allowed_for_all = False
        if allowed_for_all:
            return True
        _report_disallowed(self, request)
        return False

    def storage_class_ok(self, sop_class: str) -> bool:
        if self.accepted_sop_classes is not None and not any(
                wildcard_regex(p).fullmatch(sop_class) for p in self.accepted_sop_classes):
            return False
        return not any(wildcard_regex(p).fullmatch(sop_class) for p in self.rejected_sop_classes)


def _report_disallowed(snap: Snapshot, request: Request) -> None:
    logger.warning('DICOM authorization rejected for AET %s on IP %s: The DICOM command %s is not allowed for '
                   'this modality according to configuration option "DicomModalities"',
                   snap.calling_aet, snap.remote_ip, request.value)


def make_snapshot(settings: Settings, modalities: Mapping[str, Modality], accepted_syntaxes: list[str],
                  unknown_sop_class_accepted: bool, calling_aet: str, called_aet: str,
                  remote_ip: str) -> Snapshot:
    strict = bool(settings.StrictAetComparison)
    always = frozenset(r for r, option in _ALWAYS_ALLOW.items() if getattr(settings, option))
    worklists = settings.Worklists
    return Snapshot(
        calling_aet=calling_aet,
        called_aet=called_aet,
        remote_ip=remote_ip,
        modalities=modalities_with_aet(modalities, calling_aet, strict),
        always_allow=always,
        check_host=bool(settings.DicomCheckModalityHost),
        check_called_aet=bool(settings.DicomCheckCalledAet),
        local_aet=settings.DicomAet,
        strict_aet=strict,
        storage_syntaxes=transfer_syntaxes.in_effect(accepted_syntaxes, settings),
        unknown_sop_class_accepted=unknown_sop_class_accepted,
        accepted_sop_classes=tuple(settings.AcceptedSopClasses) if settings.AcceptedSopClasses else None,
        rejected_sop_classes=tuple(settings.RejectedSopClasses or ()),
        worklists=bool(worklists.get("Enable")) and bool(worklists.get("Database")),
    )


# -- presentation contexts -----------------------------------------------------------------------

_registered_unknown: set[str] = set()
_register_lock = threading.Lock()


def is_known_uid(uid: str) -> bool:
    """DCMTK's dcmFindNameOfUID() != NULL, with pydicom's dictionary standing in for DCMTK's."""
    from pydicom._uid_dict import UID_dictionary

    return uid in UID_dictionary


def _ensure_storage_service(uid: str) -> None:
    """Make pynetdicom route C-STORE on this SOP class (unknown, or retired) to a Storage service class."""
    if uid in _PYNETDICOM_STORAGE or uid in _registered_unknown:
        return
    if issubclass(uid_to_service_class(uid), StorageServiceClass):
        return
    with _register_lock:
        if uid in _registered_unknown:
            return
        keyword = "OrthancLiteUnknownStorage_" + re.sub(r"[^0-9A-Za-z]", "_", uid)
        try:
            register_uid(uid, keyword, StorageServiceClass)
        except ValueError:  # already registered under that keyword by an earlier association
            pass
        _registered_unknown.add(uid)


def service_syntaxes(snap: Snapshot) -> dict[str, tuple[str, ...]]:
    """Non-storage abstract syntaxes the SCP offers (CommandDispatcher.cpp), with their syntaxes."""
    services = [VERIFICATION, PATIENT_ROOT_FIND, STUDY_ROOT_FIND, PATIENT_ROOT_MOVE, STUDY_ROOT_MOVE,
                PATIENT_ROOT_GET, STUDY_ROOT_GET, STORAGE_COMMITMENT]
    if snap.worklists:
        services.append(WORKLIST_FIND)
    return {uid: GENERIC_SYNTAXES for uid in services}


def build_contexts(snap: Snapshot, requested: Iterable[PresentationContext],
                   roles: Mapping[str, tuple[bool | None, bool | None]]) -> list[PresentationContext]:
    """The supported contexts for one association, from what the peer proposed.

    Storage: the SOP classes pynetdicom knows (DCMTK's list), AcceptedSopClasses minus RejectedSopClasses,
    and unknown ones only when UnknownSopClassAccepted; transfer syntaxes from the expanded
    AcceptedTransferSyntaxes, uncompressed first. A SOP class proposed with an SCP/SCU role item (a C-GET
    client) gets its roles accepted.
    """
    services = service_syntaxes(snap)
    wanted: dict[str, dict[str, None]] = {}
    for cx in requested:
        uid = str(cx.abstract_syntax)
        if uid in services:
            continue
        if uid in STORAGE_SOP_CLASSES:
            if not snap.storage_class_ok(uid):
                continue
        elif is_known_uid(uid) or not snap.unknown_sop_class_accepted:
            continue
        for ts in cx.transfer_syntax:
            if str(ts) in snap.storage_syntaxes:
                wanted.setdefault(uid, {})[str(ts)] = None
    out: list[PresentationContext] = []
    for uid, syntaxes in services.items():
        out.append(context(uid, syntaxes, both_roles=(uid == STORAGE_COMMITMENT)))
    for uid, found in wanted.items():
        ordered = [ts for ts in UNCOMPRESSED if ts in found] + sorted(ts for ts in found if ts not in UNCOMPRESSED)
        _ensure_storage_service(uid)
        out.append(context(uid, ordered, both_roles=uid in roles))
    return out


def context(uid: str, syntaxes: Iterable[str], both_roles: bool = False) -> PresentationContext:
    cx = PresentationContext()
    cx.abstract_syntax = UID(uid)
    cx.transfer_syntax = [UID(ts) for ts in syntaxes]
    if both_roles:
        # Storage commitment: SCU role to get N-ACTION, SCP role to get N-EVENT-REPORT (ASC_SC_ROLE_SCUSCP);
        # storage classes of a C-GET: the peer acts as the Storage SCP.
        cx.scu_role = True
        cx.scp_role = True
    return cx
