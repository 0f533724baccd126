"""Query/retrieve SCU (Orthanc's DicomControlUserConnection): C-FIND, C-MOVE, C-GET and the storage
commitment N-ACTION towards a remote modality. Blocking: run in the dimse pool. One association per call,
never shared between threads. Failures raise OrthancError (NetworkProtocol, Dicom*Unavailable, Timeout).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import PresentationContext

from ..config import Modality
from ..dicom.query_map import (
    DicomMap,
    add_level_keys,
    dataset_to_map,
    fix_wildcards,
    map_to_dataset,
    normalize_find_query,
    QUERY_RETRIEVE_LEVEL,
    DICOM_LEVEL,
)
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from . import policy
from .sockets import set_nodelay

logger = logging.getLogger(__name__)

PENDING_STATUSES: Final = (0xFF00, 0xFF01)

# The storage classes a C-GET proposes when the answer has no SOPClassesInStudy (Orthanc proposes its 120
# most common ones: 128 presentation contexts at most): the usual image, SR, RT and document classes first.
_COMMON_FIRST: Final = (
    "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.6.1",
    "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.1", "1.2.840.10008.5.1.4.1.1.1.1",
    "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2", "1.2.840.10008.5.1.4.1.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.20", "1.2.840.10008.5.1.4.1.1.128", "1.2.840.10008.5.1.4.1.1.2.1",
    "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.130", "1.2.840.10008.5.1.4.1.1.7",
    "1.2.840.10008.5.1.4.1.1.7.1", "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
    "1.2.840.10008.5.1.4.1.1.7.4", "1.2.840.10008.5.1.4.1.1.12.1", "1.2.840.10008.5.1.4.1.1.12.2",
    "1.2.840.10008.5.1.4.1.1.481.1", "1.2.840.10008.5.1.4.1.1.481.2", "1.2.840.10008.5.1.4.1.1.481.3",
    "1.2.840.10008.5.1.4.1.1.481.5", "1.2.840.10008.5.1.4.1.1.88.11", "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33", "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.5.1.4.1.1.11.1",
    "1.2.840.10008.5.1.4.1.1.104.1", "1.2.840.10008.5.1.4.1.1.66", "1.2.840.10008.5.1.4.1.1.66.4",
    "1.2.840.10008.5.1.4.1.1.77.1.4", "1.2.840.10008.5.1.4.1.1.6.2", "1.2.840.10008.5.1.4.1.1.3",
    "1.2.840.10008.5.1.4.1.1.6",
)
COMMON_STORAGE_CLASSES: Final = tuple(dict.fromkeys(
    [*_COMMON_FIRST, *sorted(policy.STORAGE_SOP_CLASSES)]))[:120]


@dataclass(frozen=True, slots=True)
class Remote:
    """DicomAssociationParameters: who we are, whom we call, how long we wait (seconds; 0 = no limit)."""

    local_aet: str
    modality: Modality
    timeout: float
    max_pdu: int = 16384
    default_encoding: str = "Latin1"


@dataclass(slots=True)
class Progress:
    """The sub-operation counters of the last C-MOVE/C-GET response (IProgressListener)."""

    remaining: int = 0
    completed: int = 0
    failed: int = 0
    warning: int = 0

    def fraction(self) -> float:
        total = self.remaining + self.completed + self.failed + self.warning
        return 0.0 if total == 0 else (self.completed + self.failed + self.warning) / total

    def update(self, rsp: Dataset) -> None:
        for attr, key in (("remaining", "NumberOfRemainingSuboperations"),
                          ("completed", "NumberOfCompletedSuboperations"),
                          ("failed", "NumberOfFailedSuboperations"),
                          ("warning", "NumberOfWarningSuboperations")):
            value = rsp.get(key)
            if value is not None:
                setattr(self, attr, int(value))


class Handle:
    """Lets another thread abort the association a call is using (a cancelled or paused job)."""

    WAKE_FOR_S: Final = 5.0

    def __init__(self) -> None:
        self.assoc: Any = None
        self.aborted = False
        self.busy = threading.Event()  # set while the call's thread exchanges DIMSE messages

    def abort(self) -> None:
        """Blocking (run it in the dimse pool): abort, then wake the call's thread until it has left. A local
        abort does not wake a thread waiting for a DIMSE answer; pynetdicom's "association gone" marker does,
        but the reactor restarted by the abort may take the first one, hence the repeats."""
        self.aborted = True
        assoc = self.assoc
        if assoc is None:
            return
        if assoc.is_established:
            assoc.abort()
        deadline = time.monotonic() + self.WAKE_FOR_S
        while True:
            try:
                assoc.dimse.msg_queue.put((None, None))
            except AttributeError:
                return
            if not self.busy.is_set() or time.monotonic() > deadline:
                return
            time.sleep(0.02)


def _nodelay() -> list[Any]:
    return [(evt.EVT_CONN_OPEN, set_nodelay)]


def _contexts(uids: Sequence[str]) -> list[PresentationContext]:
    contexts = []
    for i, uid in enumerate(uids):
        cx = policy.context(uid, policy.GENERIC_SYNTAXES)
        cx.context_id = 2 * i + 1
        contexts.append(cx)
    return contexts


def _associate(remote: Remote, contexts: list[PresentationContext], ext_neg: list[Any] | None = None,
               handlers: list[Any] | None = None) -> Any:
    """Open the association or raise NetworkProtocol (refused, unreachable, rejected, timed out)."""
    ae = AE(ae_title=remote.local_aet)
    timeout = remote.timeout or None
    ae.acse_timeout = timeout or 30
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout or 30
    m = remote.modality
    try:
        assoc = ae.associate(m.Host, int(m.Port), contexts=contexts, ae_title=m.AET, max_pdu=remote.max_pdu,
                             ext_neg=ext_neg, evt_handlers=[*_nodelay(), *(handlers or [])])
    except (OSError, ValueError) as exc:
        raise OrthancError(ErrorCode.NetworkProtocol,
                           f'DicomAssociation - connecting to AET "{m.AET}": {exc}') from None
    if not assoc.is_established:
        why = "Association rejected by the remote modality" if assoc.is_rejected else \
            f"Cannot connect to {m.Host}:{m.Port} (refused, unreachable or timed out)"
        raise OrthancError(ErrorCode.NetworkProtocol, f'DicomAssociation - connecting to AET "{m.AET}": {why}')
    return assoc


def _attach(handle: Handle | None, assoc: Any) -> None:
    if handle is not None:
        handle.assoc = assoc
        handle.busy.set()
        if handle.aborted:  # cancelled while associating
            assoc.abort()


def _detach(handle: Handle | None) -> None:
    if handle is not None:
        handle.busy.clear()


def _accepted(assoc: Any, uid: str) -> bool:
    return any(str(cx.abstract_syntax) == uid for cx in assoc.accepted_contexts)


def _release(assoc: Any) -> None:
    if assoc.is_established:
        try:
            assoc.release()
        except Exception:  # noqa: BLE001 - the peer vanished while releasing: nothing left to clean (logged)
            logger.debug("Release failed", exc_info=True)
            assoc.abort()


def _status_of(rsp: Dataset | None) -> int | None:
    if rsp is None or "Status" not in rsp:
        return None
    return int(rsp.Status)


def _lost(remote: Remote, command: str) -> OrthancError:
    return OrthancError(ErrorCode.NetworkProtocol,
                        f'DicomAssociation - {command} to AET "{remote.modality.AET}": '
                        "the association was lost or timed out before the final response")


def build_find_identifier(remote: Remote, level: ResourceLevel, query: DicomMap, normalize: bool) -> DicomMap:
    """DicomControlUserConnection::Find's identifier: normalized (tags of the level only) and fixed for the
    manufacturer, plus the level's return keys and QueryRetrieveLevel."""
    fields = dict(query)
    if normalize:
        fields, ignored = normalize_find_query(level, fields)
        for tag in ignored:
            logger.warning("Tag not allowed for this C-Find level, will be ignored: (%04x,%04x)", tag >> 16,
                           tag & 0xFFFF)
        fields = fix_wildcards(fields, remote.modality.Manufacturer)
    return add_level_keys(fields, level, remote.modality.Manufacturer)


def find(remote: Remote, level: ResourceLevel, query: DicomMap, normalize: bool = True) -> list[DicomMap]:
    """C-FIND at `level` (patient root for patients, study root otherwise); the answers as flat maps, each
    with its QueryRetrieveLevel."""
    identifier = map_to_dataset(build_find_identifier(remote, level, query, normalize), remote.default_encoding)
    model = policy.PATIENT_ROOT_FIND if level is ResourceLevel.PATIENT else policy.STUDY_ROOT_FIND
    assoc = _associate(remote, _contexts([policy.PATIENT_ROOT_FIND, policy.STUDY_ROOT_FIND]))
    answers: list[DicomMap] = []
    try:
        if not _accepted(assoc, model):
            raise OrthancError(ErrorCode.DicomFindUnavailable, f"Remote AET is {remote.modality.AET}")
        for ds in _find_answers(remote, assoc, identifier, model):
            answer = dataset_to_map(ds)
            answer.setdefault(QUERY_RETRIEVE_LEVEL, DICOM_LEVEL[level])
            _add_meta_uids(answer)
            answers.append(answer)
    finally:
        _release(assoc)
    return answers


def _find_answers(remote: Remote, assoc: Any, identifier: Dataset, model: str) -> Iterator[Dataset]:
    """The datasets of the pending C-FIND responses, as they come; then the final status is checked."""
    final: int | None = None
    for rsp, ds in assoc.send_c_find(identifier, model):
        status = _status_of(rsp)
        if status is None:
            raise _lost(remote, "C-FIND")
        if status in PENDING_STATUSES:
            if ds is not None:
                yield ds
            continue
        final = status
    if final is None:
        raise _lost(remote, "C-FIND")
    _check_final(remote, "C-FIND", final, "invalid query ?")


def _add_meta_uids(answer: DicomMap) -> None:
    """Orthanc keeps each answer as a DICOM file, whose meta header copies the SOP UIDs: an answer with a
    SOPInstanceUID (SOPClassUID) also shows MediaStorageSOPInstanceUID (MediaStorageSOPClassUID), as real
    Orthanc 1.10.1 answers /queries/{id}/answers/{i}/content."""
    for meta, tag in ((0x00020003, 0x00080018), (0x00020002, 0x00080016)):
        if answer.get(tag) and meta not in answer:
            answer[meta] = answer[tag]


def _check_final(remote: Remote, command: str, status: int, hint: str) -> None:
    """Orthanc 1.6.0+: a final status other than Success is a NetworkProtocol error (422 for "unable to
    process", 0xC000-0xCFFF)."""
    if status == 0x0000:
        return
    text = f'{command} SCU to AET "{remote.modality.AET}" has failed with DIMSE status 0x{status:04X}'
    if 0xC000 <= status <= 0xCFFF:
        raise OrthancError(ErrorCode.NetworkProtocol, f"{text} (unable to process - {hint})", http_status=422)
    raise OrthancError(ErrorCode.NetworkProtocol, text)


def move(remote: Remote, target_aet: str, level: ResourceLevel, keys: DicomMap,
         progress: Progress | None = None, handle: Handle | None = None) -> Progress:
    """One C-MOVE (study root model, as Orthanc) of the resource `keys` names, to `target_aet`."""
    fields = fix_wildcards(keys, remote.modality.Manufacturer)
    fields[QUERY_RETRIEVE_LEVEL] = DICOM_LEVEL[level]
    identifier = map_to_dataset(fields, remote.default_encoding)
    progress = progress or Progress()
    assoc = _associate(remote, _contexts([policy.STUDY_ROOT_MOVE]))
    _attach(handle, assoc)
    try:
        if not _accepted(assoc, policy.STUDY_ROOT_MOVE):
            raise OrthancError(ErrorCode.DicomMoveUnavailable, f"Remote AET is {remote.modality.AET}")
        final: int | None = None
        for rsp, _ds in assoc.send_c_move(identifier, target_aet, policy.STUDY_ROOT_MOVE):
            status = _status_of(rsp)
            if status is None:
                raise _lost(remote, "C-MOVE")
            progress.update(rsp)
            if status != 0xFF00:
                final = status
        if final is None:
            raise _lost(remote, "C-MOVE")
        _check_final(remote, "C-MOVE", final, "resource not found ?")
    finally:
        _detach(handle)
        _release(assoc)
    return progress


# A received C-GET instance: (path of the file, remote AET, remote IP, called AET) -> C-STORE status.
InstanceReceived = Callable[[str, str, str, str], int]


def get(remote: Remote, level: ResourceLevel, keys: DicomMap, sop_classes: Sequence[str],
        incoming_dir: str, on_instance: InstanceReceived, progress: Progress | None = None,
        handle: Handle | None = None) -> Progress:
    """One C-GET; each received C-STORE is written to `incoming_dir` and handed to `on_instance`, whose
    status is answered to the remote (Orthanc's InstanceReceivedHandler)."""
    fields = fix_wildcards(keys, remote.modality.Manufacturer)
    fields[QUERY_RETRIEVE_LEVEL] = DICOM_LEVEL[level]
    identifier = map_to_dataset(fields, remote.default_encoding)
    model = policy.PATIENT_ROOT_GET if level is ResourceLevel.PATIENT else policy.STUDY_ROOT_GET
    progress = progress or Progress()
    contexts = _contexts([policy.STUDY_ROOT_GET, policy.PATIENT_ROOT_GET])
    storage = list(dict.fromkeys(sop_classes))[: 128 - len(contexts)]
    if not storage:
        raise OrthancError(ErrorCode.NoPresentationContext,
                           "Cannot perform C-Get, no SOPClassUID have been accepted by Orthanc.")
    for uid in storage:
        cx = policy.context(uid, [*policy.UNCOMPRESSED])
        cx.context_id = 2 * len(contexts) + 1
        contexts.append(cx)
    roles = [build_role(uid, scp_role=True) for uid in storage]

    def on_store(event: Any) -> int:
        try:
            path = _received_file(event, incoming_dir)
        except OSError as exc:
            logger.error("C-GET SCU: cannot keep a received instance: %s", exc)
            return 0xA700
        assoc = event.assoc
        return on_instance(path, str(assoc.acceptor.ae_title).strip(), str(assoc.acceptor.address),
                           str(assoc.requestor.ae_title).strip())

    assoc = _associate(remote, contexts, ext_neg=roles, handlers=[(evt.EVT_C_STORE, on_store)])
    _attach(handle, assoc)
    try:
        if not _accepted(assoc, model):
            raise OrthancError(ErrorCode.DicomGetUnavailable, f"Remote AET is {remote.modality.AET}")
        final: int | None = None
        for rsp, _ds in assoc.send_c_get(identifier, model):
            status = _status_of(rsp)
            if status is None:
                raise _lost(remote, "C-GET")
            progress.update(rsp)
            if status not in PENDING_STATUSES:
                final = status
        if final is None:
            raise _lost(remote, "C-GET")
        if final != 0x0000:
            # Orthanc's C-GET SCU does not check the final status (the job succeeds with what was received);
            # only a lost or timed-out association fails it.
            logger.warning('C-GET SCU to AET "%s" ended with DIMSE status 0x%04X', remote.modality.AET, final)
    finally:
        _detach(handle)
        _release(assoc)
    return progress


def _received_file(event: Any, incoming_dir: str) -> str:
    """The received dataset as a file of ours: pynetdicom's temporary file when it wrote one
    (STORE_RECV_CHUNKED_DATASET), else the encoded dataset written out. The name is ours (a UUID)."""
    target = os.path.join(incoming_dir, f"cget-{uuid.uuid4().hex}.dcm")
    source = getattr(event, "dataset_path", None)
    if source is not None:
        try:
            os.replace(str(source), target)
        except OSError:
            shutil.copyfile(str(source), target)
        return target
    with open(target, "wb") as f:
        f.write(event.encoded_dataset())
    return target


def request_commitment(remote: Remote, transaction_uid: str, refs: Sequence[tuple[str, str]]) -> None:
    """Storage commitment N-ACTION (the report comes later, as an N-EVENT-REPORT to our DICOM server)."""
    cx = policy.context(policy.STORAGE_COMMITMENT, policy.GENERIC_SYNTAXES)
    cx.context_id = 1
    role = build_role(policy.STORAGE_COMMITMENT, scu_role=True, scp_role=True)
    assoc = _associate(remote, [cx], ext_neg=[role])
    try:
        if not _accepted(assoc, policy.STORAGE_COMMITMENT):
            raise OrthancError(ErrorCode.NoPresentationContext,
                               f"Remote AET {remote.modality.AET} does not support storage commitment")
        ds = Dataset()
        ds.TransactionUID = transaction_uid
        items = []
        for sop_class, sop_instance in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = sop_class
            item.ReferencedSOPInstanceUID = sop_instance
            items.append(item)
        ds.ReferencedSOPSequence = items
        rsp, _reply = assoc.send_n_action(ds, 1, policy.STORAGE_COMMITMENT, policy.STORAGE_COMMITMENT_INSTANCE)
        status = _status_of(rsp)
        if status is None:
            raise _lost(remote, "N-ACTION")
        if status != 0x0000:
            raise OrthancError(ErrorCode.NetworkProtocol,
                               f'Storage commitment N-ACTION to AET "{remote.modality.AET}" has failed with '
                               f"DIMSE status 0x{status:04X}")
    finally:
        _release(assoc)


def json_to_dataset(data: dict[str, Any], default_encoding: str = "Latin1") -> Dataset:
    """ParsedDicomFile::CreateFromJson for worklist queries: strings, and lists of objects as sequences."""
    from ..dicom.dicom_json import parse_tag
    from ..dicom.query_map import vr_of

    def build(item: dict[str, Any]) -> Dataset:
        ds = Dataset()
        for key, value in item.items():
            try:
                tag = parse_tag(str(key))
            except ValueError:
                raise OrthancError(ErrorCode.BadFileFormat, f"Unknown DICOM tag: {key}") from None
            vr = vr_of(tag)
            if isinstance(value, list):
                ds.add(DataElement(tag, "SQ", [build(v) for v in value if isinstance(v, dict)]))
            elif isinstance(value, str):
                ds.add(DataElement(tag, vr, value))
            else:
                raise OrthancError(ErrorCode.BadFileFormat, f"The value of {key} must be a string or a list")
        return ds

    ds = build(data)
    if "SpecificCharacterSet" not in ds:
        from ..dicom.query_map import ENCODING_TERMS

        ds.SpecificCharacterSet = ENCODING_TERMS.get(default_encoding, "ISO_IR 100")
    return ds


def find_worklist(remote: Remote, query: dict[str, Any]) -> list[Dataset]:
    """C-FIND on the Modality Worklist model; the answers as datasets."""
    identifier = json_to_dataset(query, remote.default_encoding)
    assoc = _associate(remote, _contexts([policy.WORKLIST_FIND]))
    answers: list[Dataset] = []
    try:
        if not _accepted(assoc, policy.WORKLIST_FIND):
            raise OrthancError(ErrorCode.DicomFindUnavailable, f"Remote AET is {remote.modality.AET}")
        answers.extend(_find_answers(remote, assoc, identifier, policy.WORKLIST_FIND))
    finally:
        _release(assoc)
    return answers


def dataset_json(ds: Dataset, fmt: str) -> dict[str, Any]:
    """A worklist answer in Orthanc's JSON format (full, short or human)."""
    from ..dicom.dicom_json import dataset_to_json

    return dataset_to_json(ds, fmt, max_length=0)
