"""The DICOMweb client's jobs, with the plugin's types and Content: DicomWebStowClient (send stored instances
with STOW-RS) and DicomWebWadoRetrieveClient (WADO-RS retrieve into the store)."""

from __future__ import annotations

from typing import Any

from ..jobs.base import Job, StepResult, register_job
from ..services.context import ServerContext
from ..services.dicomweb_servers import dicomweb_servers
from . import client_ops

STOW_BATCH = 100  # instances per STOW-RS request: a step is one request, so pause/cancel lose at most one batch
_MB = 1024 * 1024


@register_job
class StowClientJob(Job):
    job_type = "DicomWebStowClient"

    def __init__(self, server: str, instances: list[str], resources: dict[str, list[str]],
                 headers: dict[str, str]) -> None:
        self.server = server
        self.instances = instances
        self.resources = resources  # {"Patients": [...], "Studies": [...], "Series": [...], "Instances": [...]}
        self.headers = headers
        self.position = 0
        self.network_bytes = 0

    async def step(self, ctx: ServerContext) -> StepResult:
        server = (await dicomweb_servers(ctx)).get(self.server)
        batch = self.instances[self.position:self.position + STOW_BATCH]
        sent = 0

        def count(size: int) -> None:
            nonlocal sent
            sent += size

        if batch:
            await client_ops.stow(ctx, self.server, server, batch, self.headers, count)
        self.network_bytes += sent
        self.position += len(batch)
        return StepResult.SUCCESS if self.position >= len(self.instances) else StepResult.CONTINUE

    def progress(self) -> float:
        return self.position / len(self.instances) if self.instances else 1.0

    def content(self) -> dict[str, Any]:
        return {"InstancesCount": str(len(self.instances)), "NetworkSizeMB": str(self.network_bytes // _MB),
                "Resources": self.resources, "Server": self.server}

    def reset(self) -> None:
        self.position = 0
        self.network_bytes = 0

    def serialize(self) -> dict[str, Any]:
        return {"Server": self.server, "Instances": self.instances, "Resources": self.resources,
                "HttpHeaders": self.headers, "Position": self.position, "NetworkBytes": self.network_bytes}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> StowClientJob:
        job = cls(data["Server"], list(data["Instances"]), dict(data["Resources"]), dict(data["HttpHeaders"]))
        job.position = int(data.get("Position", 0))
        job.network_bytes = int(data.get("NetworkBytes", 0))
        return job


@register_job
class WadoRetrieveJob(Job):
    job_type = "DicomWebWadoRetrieveClient"

    def __init__(self, server: str, resources: list[tuple[str, dict[str, str], dict[str, str]]]) -> None:
        self.server = server
        self.resources = resources  # (uri, GET arguments, HTTP headers), one WADO-RS request each
        self.position = 0
        self.received: list[str] = []
        self.network_bytes = 0

    async def step(self, ctx: ServerContext) -> StepResult:
        if self.position < len(self.resources):
            server = (await dicomweb_servers(ctx)).get(self.server)
            uri, arguments, headers = self.resources[self.position]
            size = 0

            def count(n: int) -> None:
                nonlocal size
                size += n

            self.received += await client_ops.wado_retrieve(ctx, self.server, server, uri, arguments, headers, count)
            self.network_bytes += size
            self.position += 1
        return StepResult.SUCCESS if self.position >= len(self.resources) else StepResult.CONTINUE

    def progress(self) -> float:
        return self.position / len(self.resources) if self.resources else 1.0

    def content(self) -> dict[str, Any]:
        return {"NetworkUsageMB": str(self.network_bytes // _MB), "ReceivedInstancesCount": str(len(self.received))}

    def reset(self) -> None:  # the plugin cannot resume a retrieve either: it starts over
        self.position = 0
        self.received = []
        self.network_bytes = 0

    def serialize(self) -> dict[str, Any]:
        return {"Server": self.server, "Resources": [list(r) for r in self.resources]}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> WadoRetrieveJob:
        return cls(data["Server"], [(uri, dict(args), dict(headers)) for uri, args, headers in data["Resources"]])
