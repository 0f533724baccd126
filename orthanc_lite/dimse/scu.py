"""Outbound associations made by the SCP side: C-STORE sub-operations of C-MOVE, the storage commitment
N-EVENT-REPORT. Blocking; run in the dimse pool or in an association thread. One association per job,
never shared between threads (pydicom/pynetdicom#137).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import PresentationContext

from ..config import Modality
from . import policy, status
from .sockets import set_nodelay

if TYPE_CHECKING:
    from .query import InstanceToSend

logger = logging.getLogger(__name__)

MAX_CONTEXTS = 128


def _nodelay_handlers() -> Any:
    return [(evt.EVT_CONN_OPEN, set_nodelay)]


def storage_contexts(pairs: Iterable[tuple[str, str]]) -> list[PresentationContext]:
    """Orthanc's proposal for a set of instances (DicomStoreUserConnection::ProposeStorageClass): per SOP class,
    each of its stored transfer syntaxes in a context of its own (a peer that accepts one takes the file as it
    is), then Explicit Little Endian (the preferred one) and Implicit Little Endian, each alone, when not stored."""
    by_class: dict[str, dict[str, None]] = {}
    for sop_class, ts in pairs:
        if sop_class:
            by_class.setdefault(sop_class, {})
            if ts:
                by_class[sop_class][ts] = None
    contexts: list[PresentationContext] = []
    for sop_class, syntaxes in by_class.items():
        for ts in syntaxes:
            contexts.append(policy.context(sop_class, [ts]))
        for ts in (policy.EXPLICIT_LE, policy.IMPLICIT_LE):
            if ts not in syntaxes:
                contexts.append(policy.context(sop_class, [ts]))
    if len(contexts) > MAX_CONTEXTS:
        logger.warning("Too many SOP classes to propose (%d contexts): keeping %d", len(contexts), MAX_CONTEXTS)
        contexts = contexts[:MAX_CONTEXTS]
    for i, cx in enumerate(contexts):
        cx.context_id = 2 * i + 1
    return contexts


def store_association_kwargs(max_pdu: int, instances: Sequence[InstanceToSend],
                             holder: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments pynetdicom's C-MOVE SCP passes to AE.associate() for the sub-operations:
    our contexts, TCP_NODELAY, and a hook that hands the association to the handler (to pick syntaxes)."""

    def capture(event: Any) -> None:
        holder["assoc"] = event.assoc

    return {
        "contexts": storage_contexts((i.sop_class, i.transfer_syntax) for i in instances),
        "evt_handlers": [*_nodelay_handlers(), (evt.EVT_ESTABLISHED, capture)],
        "max_pdu": max_pdu,
    }


def adapt_to_contexts(dataset: Dataset, assoc: Any, as_requestor: bool) -> None:
    """Decompress `dataset` when no accepted context carries its transfer syntax but an uncompressed one
    exists for its SOP class (in place). Otherwise leave it: pynetdicom converts between uncompressed
    syntaxes itself, and reports a failed sub-operation when nothing fits. A stored file without File Meta (a
    bare data set, which Orthanc stores and sends too) is labelled with the encoding pydicom read it in, without
    which pynetdicom cannot choose a context."""
    _label_bare_dataset(dataset)
    try:
        sop_class = str(dataset.SOPClassUID)
        ts = str(dataset.file_meta.TransferSyntaxUID)
    except AttributeError:
        return
    usable = []
    for cx in assoc.accepted_contexts:
        if str(cx.abstract_syntax) != sop_class:
            continue
        if not as_requestor and not cx.as_scu:
            continue
        usable.append(str(cx.transfer_syntax[0]))
    if not usable or ts in usable or ts in policy.UNCOMPRESSED:
        return
    if any(u in policy.UNCOMPRESSED for u in usable):
        if "PixelData" not in dataset:
            # Nothing is compressed (e.g. a compressed syntax without pixel data, which Orthanc sends too):
            # its elements are Explicit VR Little Endian already; only the label changes.
            dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            return
        try:
            dataset.decompress(generate_instance_uid=False)  # lossless: the instance stays the same, as Orthanc's
        except Exception as exc:  # noqa: BLE001 - no decoder for this syntax: the sub-operation will fail (logged)
            logger.warning("Cannot transcode %s from %s for the peer: %s", dataset.get("SOPInstanceUID"), ts, exc)


def _label_bare_dataset(dataset: Dataset) -> None:
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return
    implicit, little = dataset.original_encoding
    if implicit is None:
        return
    if meta is None:
        dataset.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = (ImplicitVRLittleEndian if implicit else
                              ExplicitVRLittleEndian if little else ExplicitVRBigEndian)


def _associate(local_aet: str, modality: Modality, contexts: list[PresentationContext], timeout: float | None,
               max_pdu: int, ext_neg: list[Any] | None = None) -> Any:
    ae = AE(ae_title=local_aet)
    ae.acse_timeout = timeout or 30
    ae.dimse_timeout = timeout or None
    ae.network_timeout = timeout or None
    ae.connection_timeout = timeout or None
    return ae.associate(modality.Host, int(modality.Port), contexts=contexts, ae_title=modality.AET,
                        max_pdu=max_pdu, ext_neg=ext_neg, evt_handlers=_nodelay_handlers())


def send_commitment_report(local_aet: str, modality: Modality, transaction_uid: str,
                           success: Sequence[tuple[str, str]], failed: Sequence[tuple[str, str, int]],
                           timeout: float | None, max_pdu: int) -> bool:
    """N-EVENT-REPORT of a storage commitment result, on a new association where we play the SCP role."""
    cx = policy.context(policy.STORAGE_COMMITMENT, policy.GENERIC_SYNTAXES)
    cx.context_id = 1
    # We send the N-EVENT-REPORT, which is the Storage Commitment SCP's part: ask for the SCP role.
    role = build_role(policy.STORAGE_COMMITMENT, scu_role=False, scp_role=True)
    assoc = _associate(local_aet, modality, [cx], timeout, max_pdu, ext_neg=[role])
    if not assoc.is_established:
        logger.error("Storage commitment: cannot associate with %s (%s:%s)", modality.AET, modality.Host,
                     modality.Port)
        return False
    try:
        ds = Dataset()
        ds.TransactionUID = transaction_uid
        if success:
            ds.ReferencedSOPSequence = [_item(c, i) for c, i in success]
        if failed:
            items = []
            for c, i, reason in failed:
                item = _item(c, i)
                item.FailureReason = reason
                items.append(item)
            ds.FailedSOPSequence = items
        event_type = 2 if failed else 1
        rsp, _reply = assoc.send_n_event_report(ds, event_type, policy.STORAGE_COMMITMENT,
                                                policy.STORAGE_COMMITMENT_INSTANCE)
        ok = rsp is not None and "Status" in rsp and int(rsp.Status) == status.SUCCESS
        if not ok:
            logger.error("Storage commitment: the report to %s was not acknowledged", modality.AET)
        return ok
    finally:
        if assoc.is_established:
            assoc.release()


def _item(sop_class: str, sop_instance: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class
    item.ReferencedSOPInstanceUID = sop_instance
    return item
