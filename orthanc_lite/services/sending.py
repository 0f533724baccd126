"""What the outgoing transfers share (C-STORE SCU to modalities, stores to Orthanc peers): the body of a
store request, the instances under the requested resources, the /exports log, the read of one file."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import ErrorCode, OrthancError
from ..index.sending import ExportedResource, OutgoingInstance
from .context import now_iso

if TYPE_CHECKING:
    from .context import ServerContext

__all__ = ["ExportedResource", "OutgoingInstance", "parse_export_request", "resolve", "log_exports", "instances_by_id",
           "read_instance_sync", "is_orthanc_id"]

_ORTHANC_ID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{8}){4}$")


def is_orthanc_id(text: str) -> bool:
    """Orthanc's Toolbox::IsSHA1: five dash-separated groups of 8 hexadecimal digits."""
    return bool(_ORTHANC_ID.match(text))


def parse_export_request(raw: bytes) -> tuple[list[str], dict[str, Any]]:
    """The resources and the other fields of a store request (as GetInstancesToExport): a bare ID, a JSON
    string, a JSON array of IDs, or an object whose "Resources" is that array."""
    text = raw.decode("utf-8", "replace").strip()
    if is_orthanc_id(text):
        return [text], {}
    try:
        request = orjson.loads(raw) if raw.strip() else None
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BadFileFormat, "Must provide a JSON value") from None
    if isinstance(request, str):
        request = [request]
    options: dict[str, Any] = {}
    if isinstance(request, list):
        resources = request
    elif isinstance(request, dict):
        if "Resources" not in request:
            raise OrthancError(ErrorCode.BadFileFormat, 'Missing field in JSON: "Resources"')
        resources = request["Resources"]
        if not isinstance(resources, list):
            raise OrthancError(ErrorCode.BadFileFormat, 'JSON field "Resources" must contain an array')
        options = dict(request)
    else:
        raise OrthancError(ErrorCode.BadFileFormat, "Must provide a JSON object, or a JSON array of strings")
    ids: list[str] = []
    for item in resources:
        if not isinstance(item, str):
            raise OrthancError(ErrorCode.BadFileFormat,
                               "Resources to be exported must be specified as a JSON array of strings")
        stripped = item.strip()
        if not is_orthanc_id(stripped):
            raise OrthancError(ErrorCode.BadFileFormat, f"This string is not a valid Orthanc identifier: {stripped}")
        ids.append(stripped)
    return ids, options


async def resolve(ctx: ServerContext, public_ids: list[str]) -> tuple[list[ExportedResource], list[OutgoingInstance]]:
    """The resources and the instances under each of them (in order); an unknown ID is a 404."""
    found, instances, unknown = await ctx.index.resolve_for_sending(public_ids)
    if unknown:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {unknown[0]}")
    return found, instances


async def log_exports(ctx: ServerContext, resources: list[ExportedResource], remote: str) -> None:
    """Record the sent resources in /exports when LogExportedResources is on."""
    if not ctx.settings.LogExportedResources:
        return
    date = now_iso()
    for resource in resources:
        await ctx.index.log_export(resource.level, resource.public_id, remote, resource.uids, date)


def read_instance_sync(ctx: ServerContext, instance: OutgoingInstance) -> bytes:
    """The stored DICOM file of an instance (blocking: run it in a pool)."""
    return ctx.storage.read_sync(instance.attachment.uuid, compressed=instance.attachment.compression == 2)


async def instances_by_id(ctx: ServerContext, public_ids: list[str]) -> dict[str, OutgoingInstance]:
    """The listed instances that still exist (a job resolves its list once, at its first step)."""
    return await ctx.index.instances_by_id(public_ids)
