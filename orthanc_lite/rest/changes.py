"""/changes and /exports (~ OrthancRestChanges.cpp)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ..errors import ErrorCode, OrthancError
from ..model import ChangeType
from .helpers import ctx_of, json_response, text_response

routes = web.RouteTableDef()

DEFAULT_LIMIT: Final = 100


def _paging(request: web.Request) -> tuple[int, int | None, int]:
    """since, to (None when absent) and limit. As Orthanc, a value that is not a number resets all three to
    their defaults rather than failing."""
    query = request.query
    try:
        since = int(query.get("since", "0"))
        to = int(query["to"]) if "to" in query else None
        limit = int(query.get("limit", str(DEFAULT_LIMIT)))
    except ValueError:
        return 0, None, DEFAULT_LIMIT
    if limit < 0:
        return 0, None, DEFAULT_LIMIT
    return since, (None if to is not None and to < 0 else to), limit


def _change_types(request: web.Request) -> tuple[ChangeType, ...]:
    """?type=A;B (ExtendedChanges); "all" or "All" means no filter, an unknown name is a 400."""
    text = request.query.get("type", "all")
    if text in ("all", "All"):
        return ()
    out: list[ChangeType] = []
    for name in text.split(";"):
        try:
            out.append(ChangeType[name])
        except KeyError:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown change type: {name}") from None
    return tuple(dict.fromkeys(out))


@routes.get("/changes")
async def get_changes(request: web.Request) -> web.Response:
    """The changes log: ?since (exclusive), ?to (inclusive), ?type=A;B, ?limit (default 100), ?last."""
    ctx = ctx_of(request)
    types = _change_types(request)
    if "last" in request.query:
        changes, last = await ctx.index.last_change()
        done = True
    else:
        since, to, limit = _paging(request)
        changes, done, last = await ctx.index.changes(since, limit, to, types)
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
    since, _, limit = _paging(request)  # Orthanc parses "to" here too, and ignores it
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
