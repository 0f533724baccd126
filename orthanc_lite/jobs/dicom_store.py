"""DicomModalityStore: C-STORE SCU of a set of instances to a remote modality over one association, a batch of
instances per step (Orthanc's DicomModalityStoreJob)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from ..config import Modality
from ..dimse import store_scu
from ..errors import OrthancError
from ..services import sending
from .base import Job, StepResult, register_job

if TYPE_CHECKING:
    from pynetdicom.association import Association

    from ..services.context import ServerContext

logger = logging.getLogger(__name__)

# One job step sends instances for up to this long (then the engine sees progress, pauses and cancels), and at
# most this many (each one's file is read inside the step).
STEP_BUDGET_S = 0.1
STEP_MAX_INSTANCES = 500


def scu_timeout(ctx: ServerContext, modality: Modality, requested: int | None = None) -> int:
    """Seconds to wait for the remote (0 = no limit): the request's Timeout, else the modality's, else
    DicomScuTimeout (as DicomAssociationParameters)."""
    if requested is not None:
        return requested
    if modality.Timeout:
        return int(modality.Timeout)
    return int(ctx.settings.DicomScuTimeout)


def endpoint_for(ctx: ServerContext, modality: Modality, local_aet: str | None, timeout: int) -> store_scu.Endpoint:
    """The modality's LocalAet wins over the requested one, which wins over DicomAet."""
    aet = modality.LocalAet or local_aet or str(ctx.settings.DicomAet)
    return store_scu.Endpoint(aet, modality, float(timeout) if timeout else None,
                              int(ctx.settings.MaximumPduLength))


@register_job
class DicomModalityStoreJob(Job):
    job_type = "DicomModalityStore"

    def __init__(self, remote: str, modality: Modality, local_aet: str, instances: list[str], parents: list[str],
                 timeout: int, permissive: bool = False, originator_aet: str | None = None,
                 originator_id: int | None = None, description: str = "REST API") -> None:
        self.remote = remote  # the symbolic name (for the logs)
        self.modality = modality
        self.local_aet = local_aet  # as requested; the effective one is the endpoint's
        self.instances = instances
        self.parents = parents
        self.timeout = timeout
        self.permissive = permissive
        self.originator_aet = originator_aet
        self.originator_id = originator_id
        self.description = description
        self.position = 0
        self.failed: list[str] = []
        self._outgoing: dict[str, sending.OutgoingInstance] | None = None
        self._assoc: Association | None = None
        self._holder: dict[str, Any] = {}
        self._endpoint: store_scu.Endpoint | None = None
        self._in_dimse = threading.Event()  # set while a dimse thread sends on the association
        self._sent_in_step = 0  # instances the current step's dimse thread has sent (kept when the step is cancelled)
        self.storage_commitment = False  # chain the C-STOREs with a storage commitment request
        self.transaction_uid: str | None = None

    # --- the work ---------------------------------------------------------------------------------
    async def step(self, ctx: ServerContext) -> StepResult:
        if self.position >= len(self.instances):
            await self._close(ctx)
            if self.storage_commitment and self.transaction_uid is None:
                await self._request_commitment(ctx)
            return StepResult.SUCCESS
        if self._outgoing is None:
            self._outgoing = await sending.instances_by_id(ctx, self.instances)
        if self._endpoint is None:
            self._endpoint = endpoint_for(ctx, self.modality, self.local_aet, self.timeout)
        public_id = self.instances[self.position]
        if public_id not in self._outgoing:  # deleted after the job was submitted: skipped, as Orthanc does
            logger.warning("An instance was removed after the job was issued: %s", public_id)
            self.failed.append(public_id)
            self.position += 1
            return StepResult.CONTINUE
        try:
            sent, error = await self._send(ctx)
        except asyncio.CancelledError:
            self._abort()  # unblocks the dimse thread at once; a resumed job opens a new association
            self.position += self._sent_in_step  # a resumed job does not send those again
            raise
        except OrthancError as exc:  # the association could not be opened
            sent, error = 0, exc
        self.position += sent
        if error is None:
            return StepResult.CONTINUE
        public_id = self.instances[self.position]
        if not self.permissive:
            await self._close(ctx)
            raise error
        logger.error("C-STORE of instance %s to %s failed (permissive job goes on): %s", public_id,
                     self.remote, error.details or error)
        self.failed.append(public_id)
        if self._assoc is not None and not self._assoc.is_established:
            self._assoc = None
        self.position += 1
        return StepResult.CONTINUE

    async def _send(self, ctx: ServerContext) -> tuple[int, OrthancError | None]:
        """Send the instances from `position` on, as many as fit in STEP_BUDGET_S, in one dimse hop: how many
        were sent, and the error of the next one if it failed."""
        assert self._outgoing is not None and self._endpoint is not None
        self._sent_in_step = 0
        if self._assoc is None or not self._assoc.is_established:
            pairs = [(i.sop_class, i.transfer_syntax) for i in self._outgoing.values()]
            self._holder = {}
            self._assoc = await ctx.executors.run_dimse(store_scu.open_store, self._endpoint, pairs, self._holder)
        batch: list[sending.OutgoingInstance] = []
        for public_id in self.instances[self.position:self.position + STEP_MAX_INSTANCES]:
            instance = self._outgoing.get(public_id)
            if instance is None:  # a deleted one ends the batch: the next step skips it
                break
            batch.append(instance)
        return await ctx.executors.run_dimse(self._send_sync, ctx, self._assoc, self._endpoint, batch)

    def _send_sync(self, ctx: ServerContext, assoc: Association, endpoint: store_scu.Endpoint,
                   batch: list[sending.OutgoingInstance]) -> tuple[int, OrthancError | None]:
        self._in_dimse.set()
        sent = self._sent_in_step = 0
        try:
            deadline = time.monotonic() + STEP_BUDGET_S
            with store_scu.StoreSender(assoc, endpoint, self.originator_aet, self.originator_id) as sender:
                for instance in batch:
                    try:
                        data = sending.read_instance_sync(ctx, instance)
                        sender.store(data, instance.sop_class, instance.sop_instance)
                    except OrthancError as exc:
                        return sent, exc
                    sent = self._sent_in_step = sent + 1
                    if time.monotonic() > deadline or not assoc.is_established:
                        break
            return sent, None
        finally:
            self._in_dimse.clear()

    def _abort(self) -> None:
        for assoc in (self._assoc, self._holder.get("assoc")):
            if assoc is not None:
                store_scu.abort(assoc, self._in_dimse)
        self._assoc = None
        self._holder = {}

    async def _close(self, ctx: ServerContext) -> None:
        assoc, self._assoc = self._assoc, None
        if assoc is not None:
            await ctx.executors.run_dimse(store_scu.release, assoc)

    async def _request_commitment(self, ctx: ServerContext) -> None:
        """"StorageCommitment": true: ask the modality to commit what was sent (GET /storage-commitment/{uid})."""
        from ..dimse.queries import commit_sent_instances

        failed = set(self.failed)
        sent = [i for i in self.instances if i not in failed]
        self.transaction_uid = await commit_sent_instances(ctx, self.modality, sent, self.timeout or None,
                                                           self.local_aet)

    async def on_finished(self, ctx: ServerContext, success: bool) -> None:
        await self._close(ctx)

    # --- the bookkeeping ---------------------------------------------------------------------------
    def progress(self) -> float:
        return self.position / (len(self.instances) + 1)

    def content(self) -> dict[str, Any]:
        endpoint_aet = self.modality.LocalAet or self.local_aet
        out: dict[str, Any] = {
            "Description": self.description,
            "InstancesCount": len(self.instances),
            "FailedInstancesCount": len(self.failed),
            "LocalAet": endpoint_aet,
            "RemoteAet": self.modality.AET,
        }
        if self.parents:
            out["ParentResources"] = sorted(set(self.parents))
        if self.originator_id:
            out["MoveOriginatorAET"] = self.originator_aet or ""
            out["MoveOriginatorID"] = self.originator_id
        if self.storage_commitment:
            out["StorageCommitmentTransactionUID"] = self.transaction_uid
        return out

    def reset(self) -> None:
        self._abort()
        self.position = 0
        self.failed = []
        self._outgoing = None
        self.transaction_uid = None

    def serialize(self) -> dict[str, Any]:
        return {"Remote": self.remote, "RemoteModality": self.modality.to_json(), "LocalAet": self.local_aet,
                "Instances": self.instances, "ParentResources": self.parents, "Timeout": self.timeout,
                "Permissive": self.permissive, "MoveOriginatorAet": self.originator_aet,
                "MoveOriginatorID": self.originator_id, "Description": self.description,
                "Position": self.position, "FailedInstances": self.failed,
                "StorageCommitment": self.storage_commitment, "TransactionUID": self.transaction_uid}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        job = cls(data["Remote"], Modality.from_json(data["RemoteModality"]), data["LocalAet"], list(data["Instances"]),
                  list(data["ParentResources"]), int(data["Timeout"]), bool(data["Permissive"]),
                  data.get("MoveOriginatorAet"), data.get("MoveOriginatorID"), data.get("Description", "REST API"))
        job.position = int(data.get("Position", 0))
        job.failed = list(data.get("FailedInstances", []))
        job.storage_commitment = bool(data.get("StorageCommitment", False))
        job.transaction_uid = data.get("TransactionUID")
        return job
