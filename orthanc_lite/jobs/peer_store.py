"""OrthancPeerStore: POST each instance of a set to an Orthanc peer's /instances, one instance per step over one
HTTP session (Orthanc's OrthancPeerStoreJob), optionally gzip-compressed or transcoded first."""

from __future__ import annotations

import asyncio
import gzip
import logging
from typing import TYPE_CHECKING, Any

import aiohttp

from ..config import Peer
from ..errors import OrthancError
from ..services import pixels, sending
from ..services.modalities import public_peer
from ..webclient.session import check_status, join_url, network_error, open_session, proxy_of
from .base import Job, StepResult, register_job

if TYPE_CHECKING:
    from ..services.context import ServerContext

logger = logging.getLogger(__name__)


def peer_summary(peer: Peer) -> Any:
    """The peer as the job's Content shows it: the short list form when nothing else is set (no password)."""
    if peer.HttpHeaders or peer.CertificateFile or peer.Pkcs11 or peer.Timeout:
        return public_peer(peer)
    if peer.Username:
        return [peer.Url, peer.Username, ""]
    return [peer.Url]


@register_job
class OrthancPeerStoreJob(Job):
    job_type = "OrthancPeerStore"

    def __init__(self, remote: str, peer: Peer, instances: list[str], parents: list[str], compress: bool = False,
                 transcode: str | None = None, permissive: bool = False, description: str = "REST API") -> None:
        self.remote = remote
        self.peer = peer
        self.instances = instances
        self.parents = parents
        self.compress = compress
        self.transcode = transcode
        self.permissive = permissive
        self.description = description
        self.position = 0
        self.failed: list[str] = []
        self.size = 0  # bytes sent (after compression)
        self._outgoing: dict[str, sending.OutgoingInstance] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def step(self, ctx: ServerContext) -> StepResult:
        if self.position >= len(self.instances):
            await self._close()
            return StepResult.SUCCESS
        if self._outgoing is None:
            self._outgoing = await sending.instances_by_id(ctx, self.instances)
        public_id = self.instances[self.position]
        if public_id not in self._outgoing:  # deleted after the job was submitted: skipped, as Orthanc does
            logger.warning("An instance was removed after the job was issued: %s", public_id)
            self.failed.append(public_id)
            self.position += 1
            return StepResult.CONTINUE
        try:
            await self._send(ctx, public_id)
        except asyncio.CancelledError:
            await self._close()  # drops the connection of the request in flight
            raise
        except OrthancError as exc:
            if not self.permissive:
                await self._close()
                raise
            logger.error("Sending instance %s to peer %s failed (permissive job goes on): %s", public_id,
                         self.remote, exc.details or exc)
            self.failed.append(public_id)
        self.position += 1
        return StepResult.CONTINUE

    async def _body(self, ctx: ServerContext, public_id: str) -> bytes:
        assert self._outgoing is not None
        instance = self._outgoing[public_id]
        if self.transcode and instance.transfer_syntax != self.transcode:
            data = await pixels.transcoded_file(ctx, public_id, self.transcode)
        else:
            data = await ctx.executors.run_io(sending.read_instance_sync, ctx, instance)
        if self.compress:
            data = await ctx.executors.run_cpu(gzip.compress, data)
        return data

    async def _send(self, ctx: ServerContext, public_id: str) -> None:
        body = await self._body(ctx, public_id)
        headers = {"Content-Type": "application/dicom"}
        if self.compress:
            headers["Content-Encoding"] = "gzip"
        if self._session is None:
            self._session = open_session(self.peer, ctx.settings)
        try:
            async with self._session.post(join_url(self.peer.Url, "instances"), data=body, headers=headers,
                                          proxy=proxy_of(ctx.settings)) as response:
                await check_status(response, self.remote)
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            await self._close()
            raise network_error(self.remote, exc) from None
        self.size += len(body)

    async def _close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def on_finished(self, ctx: ServerContext, success: bool) -> None:
        await self._close()

    def progress(self) -> float:
        return self.position / (len(self.instances) + 1)

    def content(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "Description": self.description,
            "InstancesCount": len(self.instances),
            "FailedInstancesCount": len(self.failed),
            "Peer": peer_summary(self.peer),
            "Compress": self.compress,
            "Size": str(self.size),
            "SizeMB": self.size // (1024 * 1024),
        }
        if self.parents:
            out["ParentResources"] = sorted(set(self.parents))
        if self.transcode:
            out["Transcode"] = self.transcode
        return out

    def reset(self) -> None:
        self.position = 0
        self.failed = []
        self.size = 0
        self._outgoing = None
        self._session = None  # a session left by an interrupted run is closed by on_finished or dropped

    def serialize(self) -> dict[str, Any]:
        return {"Remote": self.remote, "Peer": self.peer.to_json(), "Instances": self.instances,
                "ParentResources": self.parents, "Compress": self.compress, "Transcode": self.transcode,
                "Permissive": self.permissive, "Description": self.description, "Position": self.position,
                "FailedInstances": self.failed, "Size": self.size}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        job = cls(data["Remote"], Peer.from_json(data["Peer"]), list(data["Instances"]), list(data["ParentResources"]),
                  bool(data["Compress"]), data.get("Transcode"), bool(data.get("Permissive", False)),
                  data.get("Description", "REST API"))
        job.position = int(data.get("Position", 0))
        job.failed = list(data.get("FailedInstances", []))
        job.size = int(data.get("Size", 0))
        return job
