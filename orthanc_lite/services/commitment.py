"""Storage commitment SCU helpers on the index: the (SOP class, SOP instance) pairs of stored resources,
and the stored instances with given SOPInstanceUIDs (for /storage-commitment/{id}/remove)."""

from __future__ import annotations

from typing import Any

from ..dicom.matching import IndexQuery, MatchKind, TagConstraint
from ..index import reads
from ..index.reads import ResourceInfo
from ..errors import ErrorCode, OrthancError
from ..model import MetadataType, ResourceLevel
from .context import ServerContext
from .find import FindCursor, FindRequest

SOP_INSTANCE_KEY = "0008,0018"


async def sop_refs_of(ctx: ServerContext, public_ids: list[str]) -> list[tuple[str, str]]:
    """(SOPClassUID, SOPInstanceUID) of every instance below the resources (any level), in one read transaction."""

    def tx(conn: Any) -> tuple[str | None, list[ResourceInfo]]:
        instance_ids: list[int] = []
        for public_id in public_ids:
            found = reads.find_internal(conn, public_id)
            if found is None:
                return public_id, []
            internal, level = found
            if level is ResourceLevel.INSTANCE:
                instance_ids.append(internal)
            else:
                instance_ids.extend(reads.children_internal(conn, internal, ResourceLevel.INSTANCE, level))
        return None, reads.expand(conn, ResourceLevel.INSTANCE, instance_ids) if instance_ids else []

    missing, infos = await ctx.index.engine.read(tx)
    if missing is not None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {missing}")
    refs: list[tuple[str, str]] = []
    for info in infos:
        sop_class = info.metadata.get(MetadataType.SopClassUid)
        sop_instance = info.main_tags.get(SOP_INSTANCE_KEY)
        if not sop_class or not sop_instance:
            raise OrthancError(ErrorCode.InternalError,
                               f"Cannot retrieve SOP Class/Instance UID of Orthanc instance: {info.public_id}")
        refs.append((sop_class, sop_instance))
    return refs


async def instances_with_sop_uids(ctx: ServerContext, sop_instances: list[str]) -> list[str]:
    """The public IDs of the stored instances whose SOPInstanceUID is listed (batched lookups)."""
    out: list[str] = []
    for start in range(0, len(sop_instances), 500):
        chunk = tuple(dict.fromkeys(sop_instances[start:start + 500]))
        constraint = TagConstraint(0x00080018, MatchKind.LIST, chunk, True, "UI")
        request = FindRequest(IndexQuery(level=ResourceLevel.INSTANCE, constraints=(constraint,)),
                              storage_access="Never")
        async for batch in FindCursor(ctx, request):
            out.extend(answer.public_id for answer in batch)
    return out
