"""POST /{level}/{id}/reconstruct and /tools/reconstruct: recompute the main DICOM tags of resources from their
stored files (after a configuration change, or for resources stored by an older version). Never imports aiohttp."""

from __future__ import annotations

from typing import Final

from ..dicom.parse import parse_instance
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, ResourceLevel
from . import metadata as metadata_service
from .context import ServerContext

BATCH: Final = 64  # instances read between two index writes


async def reconstruct(ctx: ServerContext, public_id: str | None, level: ResourceLevel | None = None,
                      files: bool = False) -> int:
    """Reconstruct one resource (and everything below it), or everything when `public_id` is None. With `files`,
    the DICOM attachments are also rewritten as the configuration now asks (StorageCompression). Returns the
    number of instances read."""
    if public_id is None:
        roots = await ctx.index.list_public_ids(ResourceLevel.PATIENT)
    else:
        if await ctx.index.find_internal(public_id, level) is None:
            raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
        roots = [public_id]
    count = 0
    for root in roots:
        located = await ctx.index.find_internal(root)
        if located is None:
            continue  # deleted meanwhile
        rows = await ctx.index.descendant_attachments(located[0])
        for start in range(0, len(rows), BATCH):
            batch = [attachment for _instance, _series, attachment in rows[start:start + BATCH]]
            updates = await ctx.executors.run_io(_read_tags, ctx, batch)
            await ctx.index.update_main_tags(updates)
            count += len(batch)
        if files:
            compress = bool(ctx.settings.StorageCompression)
            for instance, _series, _attachment in rows:
                await metadata_service.change_compression(ctx, instance, ResourceLevel.INSTANCE, 1, compress)
    return count


def _read_tags(ctx: ServerContext, attachments: list[AttachmentInfo]) -> list[tuple[str, int, dict[str, str]]]:
    """Worker thread: the main tags of every level of each instance, as the store computes them."""
    updates: dict[tuple[str, int], dict[str, str]] = {}
    for attachment in attachments:
        data = ctx.storage.read_sync(attachment.uuid, attachment.compression != 1)
        with ctx.executors.cpu_turn:
            parsed = parse_instance(data, ctx.default_encoding)
        ids = (parsed.patient_public_id, parsed.study_public_id, parsed.series_public_id, parsed.instance_public_id)
        for level in ResourceLevel:
            tags = dict(parsed.tags[level])
            if level is ResourceLevel.STUDY:
                tags = {**parsed.tags[ResourceLevel.PATIENT], **tags}
            updates[(ids[level], int(level))] = tags
    return [(pid, level, tags) for (pid, level), tags in updates.items()]
