"""/changes and /exports (~ OrthancRestChanges.cpp)."""

from __future__ import annotations

from aiohttp import web

from ..errors import ErrorCode, OrthancError
from .helpers import ctx_of, int_arg, json_response, text_response

routes = web.RouteTableDef()


def _paging(request: web.Request) -> tuple[int, int]:
    if "to" in request.query or "type" in request.query:
        raise OrthancError(ErrorCode.ParameterOutOfRange, "\"to\" and \"type\" need the ExtendedChanges capability")
    limit = int_arg(request, "limit", 100)
    return int_arg(request, "since", 0), limit


@routes.get("/changes")
async def get_changes(request: web.Request) -> web.Response:
    """The changes log: ?since (exclusive), ?limit (default 100), ?last."""
    ctx = ctx_of(request)
    if "last" in request.query:
        changes, last = await ctx.index.last_change()
        done = True
    else:
        since, limit = _paging(request)
        changes, done, last = await ctx.index.changes(since, limit)
    body: dict[str, object] = {"Changes": [c.to_json() for c in changes], "Done": done,
                               "Last": changes[-1].seq if changes else last}
    if changes:
        body["First"] = changes[0].seq
    return json_response(body)


@routes.delete("/changes")
async def delete_changes(request: web.Request) -> web.Response:
    """Clear the changes log."""
    await ctx_of(request).index.clear_changes()
    return text_response("")


@routes.get("/exports")
async def get_exports(request: web.Request) -> web.Response:
    """Resources sent to modalities and peers (when LogExportedResources)."""
    ctx = ctx_of(request)
    since, limit = _paging(request)
    if "last" in request.query:
        since, limit = 0, 1 << 30
    exports, done, last = await ctx.index.exports(since, limit)
    if "last" in request.query:
        exports, done = exports[-1:], True
    body: dict[str, object] = {"Exports": exports, "Done": done, "Last": exports[-1]["Seq"] if exports else last}
    if exports:
        body["First"] = exports[0]["Seq"]
    return json_response(body)


@routes.delete("/exports")
async def delete_exports(request: web.Request) -> web.Response:
    """Clear the exports log."""
    await ctx_of(request).index.clear_exports()
    return text_response("")
