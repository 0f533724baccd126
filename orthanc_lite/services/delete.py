"""Delete a resource: index transaction first, then remove its files (a missing file is logged, not fatal)."""

from __future__ import annotations

import logging
from typing import Any

from ..model import ResourceLevel
from .context import ServerContext, now_iso

logger = logging.getLogger(__name__)


async def delete_resource(ctx: ServerContext, public_id: str, level: ResourceLevel) -> dict[str, Any]:
    outcome = await ctx.index.delete(public_id, level, now_iso())
    for file_uuid, _compressed in outcome.removed_uuids:
        try:
            await ctx.storage.remove(file_uuid)
        except OSError:
            logger.warning("Cannot remove file %s of deleted resource %s", file_uuid, public_id)
    ctx.stability.forget(public_id)
    logger.info("Deleted %s %s", level.type_name, public_id)
    if outcome.remaining_ancestor is None:
        return {"RemainingAncestor": None}
    anc_level, anc_id = outcome.remaining_ancestor
    return {"RemainingAncestor": {"ID": anc_id, "Path": f"/{anc_level.plural}/{anc_id}", "Type": anc_level.type_name}}
