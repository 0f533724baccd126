"""The DICOM tags of instances and of whole levels: /tags, /simplified-tags, /header, /content, /pdf, /frames,
/shared-tags, /module, /module-patient, /instances-tags (~ the tag routes of OrthancRestResources.cpp)."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

from ..services import tags as svc
from .helpers import bool_arg, ctx_of, json_bytes, json_response

routes = web.RouteTableDef()

ID: Final = "{id}"  # any text, as Orthanc: an unknown ID gives the UnknownResource error JSON
LEVELS3: Final = "{level:patients|studies|series}"
_RAW_HEADERS: Final = {"X-Content-Type-Options": "nosniff"}  # raw tag values must never be sniffed as HTML
_MODULES: Final = {"patients": "patient", "studies": "study", "series": "series", "instances": "instance"}


def dicom_format(request: web.Request, default: str) -> str:
    """OrthancRestApi::GetDicomFormat: ?simplify, then ?short, then ?full, by presence only."""
    query = request.query
    if "simplify" in query:
        return "human"
    if "short" in query:
        return "short"
    if "full" in query:
        return "full"
    return default


async def _json_off_loop(request: web.Request, full: dict[str, Any], fmt: str) -> web.Response:
    """Full-format tags as a JSON answer in `fmt`, simplified and serialized in the cpu pool (tag answers can be
    megabytes)."""
    body = await ctx_of(request).executors.run_cpu(_format_and_encode, full, fmt)
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def _format_and_encode(full: dict[str, Any], fmt: str) -> bytes:
    return json_bytes(svc.format_json(full, fmt))


def _no_answer() -> web.Response:
    """What Orthanc sends when a GET handler answers nothing: 404, empty body."""
    return web.Response(status=404)


async def _instance_tags(request: web.Request, fmt: str) -> web.Response:
    ctx = ctx_of(request)
    dictionary = svc.user_dictionary(ctx)
    whole = bool_arg(request, "whole")
    ignore = svc.parse_ignore_length(request.query.get("ignore-length"), dictionary)
    full = await svc.with_dataset(ctx, request.match_info["id"], svc.tags_json, ignore, dictionary, whole,
                                  whole=whole)
    return await _json_off_loop(request, full, fmt)


@routes.get(f"/instances/{ID}/tags")
async def instance_tags(request: web.Request) -> web.Response:
    """Get DICOM tags (Full format by default; ?simplify, ?short, ?ignore-length, ?whole)."""
    return await _instance_tags(request, dicom_format(request, "full"))


@routes.get(f"/instances/{ID}/simplified-tags")
async def instance_simplified_tags(request: web.Request) -> web.Response:
    """Get human-readable tags (same as /tags?simplify)."""
    return await _instance_tags(request, "human")


@routes.get(f"/instances/{ID}/header")
async def instance_header(request: web.Request) -> web.Response:
    """Get the DICOM meta-header (Full format by default; ?simplify, ?short)."""
    ctx = ctx_of(request)
    full = await svc.with_dataset(ctx, request.match_info["id"], svc.header_json, svc.user_dictionary(ctx))
    return await _json_off_loop(request, full, dicom_format(request, "full"))


@routes.get(f"/instances/{ID}/content")
@routes.get(f"/instances/{ID}/content/{{path:.*}}")
async def instance_content(request: web.Request) -> web.Response:
    """Get a raw tag, or list the tags of a dataset / the items of a sequence / the pixel data fragments."""
    ctx = ctx_of(request)
    path = [part for part in request.match_info.get("path", "").split("/") if part]
    answer = await svc.with_dataset(ctx, request.match_info["id"], svc.content, path, svc.user_dictionary(ctx),
                                    whole=svc.content_needs_whole(path))
    if answer is None:
        return _no_answer()
    if isinstance(answer, bytes):
        return web.Response(body=answer, content_type="application/octet-stream", headers=_RAW_HEADERS)
    return json_response(answer)


@routes.get(f"/instances/{ID}/pdf")
async def instance_pdf(request: web.Request) -> web.Response:
    """Get the embedded PDF of an Encapsulated PDF instance (404 for any other instance)."""
    pdf = await svc.with_dataset(ctx_of(request), request.match_info["id"], svc.extract_pdf)
    if pdf is None:
        return _no_answer()
    return web.Response(body=pdf, content_type="application/pdf", headers=_RAW_HEADERS)


@routes.get(f"/instances/{ID}/frames")
async def instance_frames(request: web.Request) -> web.Response:
    """List the frames of an instance ([0, ..., NumberOfFrames - 1])."""
    count = await svc.with_dataset(ctx_of(request), request.match_info["id"], svc.frames_count)
    return json_response(list(range(count)))


@routes.get(f"/{LEVELS3}/{ID}/shared-tags")
async def shared_tags(request: web.Request) -> web.Response:
    """Get the tags whose value is the same in every child instance (Full format by default)."""
    shared = await svc.shared_tags(ctx_of(request), request.match_info["id"])
    return await _json_off_loop(request, shared, dicom_format(request, "full"))


async def _module(request: web.Request, module: str) -> web.Response:
    ctx = ctx_of(request)
    dictionary = svc.user_dictionary(ctx)
    ignore = svc.parse_ignore_length(request.query.get("ignore-length"), dictionary)
    public_id = request.match_info["id"]
    if request.match_info["level"] == "instances":
        attachment = await svc.instance_attachment(ctx, public_id)
    else:
        first = await svc.first_child_attachment(ctx, public_id)
        if first is None:
            return _no_answer()
        attachment = first
    tags = await svc.with_attachment(ctx, attachment, svc.module_json, module, ignore, dictionary)
    return await _json_off_loop(request, tags, dicom_format(request, "full"))


@routes.get(f"/{{level:patients|studies|series|instances}}/{ID}/module")
async def resource_module(request: web.Request) -> web.Response:
    """Get the level's module (patient, study, series or SOP common) from one child instance."""
    return await _module(request, _MODULES[request.match_info["level"]])


@routes.get(f"/{{level:studies}}/{ID}/module-patient")
async def study_module_patient(request: web.Request) -> web.Response:
    """Get the patient module of a study, from one child instance."""
    return await _module(request, "patient")


@routes.get(f"/{LEVELS3}/{ID}/instances-tags")
async def instances_tags(request: web.Request) -> web.StreamResponse:
    """Get the tags of every child instance, as {instanceId: tags} (Full format by default).

    The answer is streamed batch by batch, so a large level is never held in memory at once."""
    ctx = ctx_of(request)
    fmt = dicom_format(request, "full")
    dictionary = svc.user_dictionary(ctx)
    ignore = svc.parse_ignore_length(request.query.get("ignore-length"), dictionary)
    batches = svc.instances_tags(ctx, request.match_info["id"], fmt, ignore)
    response: web.StreamResponse | None = None
    empty = True
    async for batch in batches:  # the first batch runs before the answer starts, so early errors stay HTTP errors
        if not batch:
            continue
        chunk = await ctx.executors.run_cpu(_encode_members, batch)
        if response is None:
            response = web.StreamResponse()
            response.content_type = "application/json"
            response.charset = "utf-8"
            await response.prepare(request)
        await response.write((b"{\n" if empty else b",\n") + chunk)
        empty = False
    if response is None:
        return json_response({})
    await response.write(b"\n}")
    await response.write_eof()
    return response


def _encode_members(batch: list[tuple[str, dict[str, Any]]]) -> bytes:
    """Members of a JSON object, formatted as json_bytes formats the whole object."""
    return b",\n".join(b"  " + orjson.dumps(key) + b": " + json_bytes(value).replace(b"\n", b"\n  ")
                       for key, value in batch)
