"""/{level}/{id}/metadata and /{level}/{id}/labels, plus /tools/labels (~ the metadata and labels handlers of
OrthancRestResources.cpp). Revisions: ETag = "<revision>-<md5>", If-Match / If-None-Match as Orthanc parses them.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import OrthancError
from ..services import metadata as md
from .helpers import bool_arg, ctx_of, json_response, level_of
from .middleware import error_response

routes = web.RouteTableDef()

LEVELS = "{level:patients|studies|series|instances}"
ID = "{id:[0-9a-f-]+}"

_PLAIN = "text/plain"  # Orthanc's MimeType_PlainText, without a charset


def _empty(status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=b"", content_type=_PLAIN, headers=headers)


def if_match(request: web.Request) -> md.Expected | None:
    """The (revision, md5) of an If-Match header, or None when absent (a malformed one is a 400)."""
    value = request.headers.get("If-Match")
    return None if value is None else md.parse_revision_header("if-match", value)


def conditional_answer(request: web.Request, revision: int, md5: str) -> web.Response | None:
    """The answer to If-None-Match when it decides one: 304 when it names this very revision and content,
    400 when malformed (both carry the ETag, as Orthanc sets it first); None to answer normally."""
    value = request.headers.get("If-None-Match")
    if value is None:
        return None
    headers = {"ETag": md.etag(revision, md5)}
    try:
        expected = md.parse_revision_header("If-None-Match", value)
    except OrthancError as exc:
        return error_response(request, exc.http_status, exc.code, exc.details, headers=headers)
    return web.Response(status=304, headers=headers) if expected == (revision, md5) else None


# --- metadata -------------------------------------------------------------------------------------------

@routes.get(f"/{LEVELS}/{ID}/metadata")
async def list_metadata(request: web.Request) -> web.Response:
    """List the metadata of a resource (?expand also gives the values, ?numeric uses the numbers)."""
    ctx = ctx_of(request)
    items = await md.list_metadata(ctx, request.match_info["id"], level_of(request))
    numeric = "numeric" in request.query
    if bool_arg(request, "expand"):
        return json_response({(str(k) if numeric else md.metadata_name(ctx.settings, k)): value
                              for k, (value, _rev) in items.items()})
    return json_response([k if numeric else md.metadata_name(ctx.settings, k) for k in items])


@routes.get(f"/{LEVELS}/{ID}/metadata/{{name}}")
async def get_metadata(request: web.Request) -> web.Response:
    """The value of one metadata, as text/plain, with its revision in the ETag header."""
    ctx = ctx_of(request)
    mtype = md.metadata_type(ctx.settings, request.match_info["name"])
    found = await md.get_metadata(ctx, request.match_info["id"], level_of(request), mtype)
    if found is None:
        return web.Response(status=404)  # Orthanc's handler answers nothing
    value, revision = found
    md5 = md.text_md5(value)
    conditional = conditional_answer(request, revision, md5)
    if conditional is not None:
        return conditional
    return web.Response(body=value.encode("utf-8"), content_type=_PLAIN, headers={"ETag": md.etag(revision, md5)})


@routes.put(f"/{LEVELS}/{ID}/metadata/{{name}}")
async def set_metadata(request: web.Request) -> web.Response:
    """Set a user metadata (1024..65535 or a UserMetadata name); If-Match carries the expected revision."""
    ctx = ctx_of(request)
    mtype = md.metadata_type(ctx.settings, request.match_info["name"])
    body = await request.read()
    if not md.is_user_metadata(mtype):
        return web.Response(status=403)  # built-in metadata are read-only; Orthanc sends no body
    expected = if_match(request)
    value = body.decode("utf-8", errors="replace")
    # Orthanc finds the resource by its ID alone here, whatever the level in the URI.
    revision = await md.set_metadata(ctx, request.match_info["id"], None, mtype, value, expected)
    return _empty(headers={"ETag": md.etag(revision, md.text_md5(value))})


@routes.delete(f"/{LEVELS}/{ID}/metadata/{{name}}")
async def delete_metadata(request: web.Request) -> web.Response:
    """Delete a user metadata; If-Match is mandatory when CheckRevisions is true."""
    ctx = ctx_of(request)
    mtype = md.metadata_type(ctx.settings, request.match_info["name"])
    if not md.is_user_metadata(mtype):
        return web.Response(status=403)
    await md.delete_metadata(ctx, request.match_info["id"], None, mtype, if_match(request))
    return _empty()


# --- labels ---------------------------------------------------------------------------------------------

@routes.get(f"/{LEVELS}/{ID}/labels")
async def list_labels(request: web.Request) -> web.Response:
    """The labels of a resource, sorted."""
    return json_response(await md.list_labels(ctx_of(request), request.match_info["id"], level_of(request)))


@routes.get(f"/{LEVELS}/{ID}/labels/{{label}}")
async def get_label(request: web.Request) -> web.Response:
    """Test a label: an empty 200 when the resource has it, 404 otherwise."""
    labels = await md.list_labels(ctx_of(request), request.match_info["id"], level_of(request))
    if request.match_info["label"] in labels:
        return _empty()
    return web.Response(status=404)


@routes.put(f"/{LEVELS}/{ID}/labels/{{label}}")
async def add_label(request: web.Request) -> web.Response:
    """Add a label ([A-Za-z0-9_-]{1,64}) to a resource; adding it twice is fine."""
    await md.add_label(ctx_of(request), request.match_info["id"], level_of(request), request.match_info["label"])
    return _empty()


@routes.delete(f"/{LEVELS}/{ID}/labels/{{label}}")
async def remove_label(request: web.Request) -> web.Response:
    """Remove a label from a resource; removing an absent one is fine."""
    await md.remove_label(ctx_of(request), request.match_info["id"], level_of(request), request.match_info["label"])
    return _empty()


@routes.get("/tools/labels")
async def all_labels(request: web.Request) -> web.Response:
    """Every label used by any resource, sorted."""
    return json_response(await md.all_labels(ctx_of(request)))
