"""/patients /studies /series /instances: upload, lists, expanded resources, parents and children,
statistics, protection, delete (~ OrthancRestResources.cpp)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import zipfile
from typing import Any

from aiohttp import web

from ..app_keys import USERNAME
from ..dicom.dicomweb_encode import file_to_dicomweb
from ..errors import ErrorCode, OrthancError
from ..model import Origin, ResourceLevel, StoreResult
from ..services import delete as delete_service
from ..services import find as find_service
from ..services import resources as res
from ..services.context import ServerContext
from ..services.store import store_bytes, store_file
from . import upload_form
from .find import ParsedFind, format_answer
from .helpers import (SpooledBody, bool_arg, ctx_of, int_arg, json_body, json_bytes, json_response, level_of,
                      max_body_bytes, receive_body, text_response)
from .images import transcoded_file

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

LEVELS = "{level:patients|studies|series|instances}"
ID = "{id:[0-9a-f-]+}"


def _requested_tags(request: web.Request) -> list[str]:
    """?requested-tags=A;B (?requestedTags before Orthanc 1.12.4)."""
    raw = request.query.get("requested-tags", request.query.get("requestedTags", ""))
    return [name for name in raw.split(";") if name]


async def _expanded_with_tags(request: web.Request, level: ResourceLevel, parent: tuple[ResourceLevel, str] | None,
                              since: int = 0, limit: int = 0) -> list[dict[str, Any]]:
    """Expanded resources with their RequestedTags, through the search service (computed tags, file reads)."""
    ctx = ctx_of(request)
    body: dict[str, Any] = {"Level": level.type_name, "Query": {}, "Expand": True, "Since": since, "Limit": limit,
                            "RequestedTags": _requested_tags(request)}
    fmt = res.tag_format(request.query)
    if fmt != "human":
        body[fmt.capitalize()] = True
    parsed = ParsedFind(ctx, body)
    if parent is not None:
        parsed.query = dataclasses.replace(parsed.query, parents=(parent,))
    result = await find_service.find(ctx, parsed.request(ctx))
    return [format_answer(ctx, answer, parsed) for answer in result.answers]


def _origin(request: web.Request) -> Origin:
    return Origin("RestApi", remote_ip=request.remote or "", remote_aet="", http_username=request.get(USERNAME, ""))


@routes.post("/instances")
async def upload(request: web.Request) -> web.Response:
    """Upload DICOM instances (a file, a gzip body, a ZIP archive or multipart/form-data)."""
    ctx = ctx_of(request)
    origin = _origin(request)
    mime, params = upload_form.parse_header(request.headers.get("Content-Type", ""))
    if mime == "multipart/form-data":
        # Orthanc Explorer's uploads (several files, or one chunk of a file): Orthanc answers an empty 200.
        await upload_form.receive_form(request, ctx, params.get("boundary", ""),
                                       lambda part: _store_body(ctx, part, origin))
        return web.Response(status=200)
    body = await receive_body(ctx, request.content, max_body_bytes(ctx))
    if not body:
        raise OrthancError(ErrorCode.BadFileFormat, "Received an empty DICOM file")
    results = await _store_body(ctx, body, origin)
    return json_response(results if _is_zip(body) else results[0])


def _is_zip(body: bytes | SpooledBody) -> bool:
    head = body.head if isinstance(body, SpooledBody) else body[:4]
    return head.startswith(b"PK\x03\x04")


async def _store_body(ctx: ServerContext, body: bytes | SpooledBody, origin: Origin) -> list[dict[str, Any]]:
    if not _is_zip(body):
        if isinstance(body, SpooledBody):
            single = await store_file(ctx, body.path, origin, body.md5)
        else:
            single = await store_bytes(ctx, body, origin)
        return [single.to_json()]
    if isinstance(body, bytes):
        fd, path = await ctx.executors.run_io(tempfile.mkstemp, ".zip", "body", ctx.storage.incoming_dir())
        await ctx.executors.run_io(_write_and_close, fd, body)
    else:
        path = body.path
    # Members are extracted one at a time to the spool folder, never the whole archive in memory.
    results: list[dict[str, Any]] = []
    try:
        names = await ctx.executors.run_io(_zip_members, path)
        for name in names:
            member_path = await ctx.executors.run_io(_extract_member, path, name, ctx.storage.incoming_dir(),
                                                     int(ctx.settings.MaximumFileSizeInArchiveMB) * 1024 * 1024)
            if member_path is None:
                continue
            try:
                result: StoreResult = await store_file(ctx, member_path, origin)
            except OrthancError as exc:
                if exc.code is ErrorCode.BadFileFormat:
                    logger.info("Skipping a non-DICOM member of the ZIP archive: %s", name)
                    continue
                raise
            results.append(result.to_json())
    except zipfile.BadZipFile:
        raise OrthancError(ErrorCode.BadFileFormat, "Corrupted ZIP archive") from None
    finally:
        await ctx.executors.run_io(os.unlink, path)
    return results


def _write_and_close(fd: int, data: bytes) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _zip_members(path: str) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [info.filename for info in archive.infolist()
                if not info.is_dir() and os.path.basename(info.filename).upper() != "DICOMDIR"]


def _extract_member(path: str, name: str, folder: str, max_size: int) -> str | None:
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        if max_size and info.file_size > max_size:
            logger.warning("Skipping a ZIP member larger than MaximumFileSizeInArchiveMB: %s", name)
            return None
        fd, out_path = tempfile.mkstemp(dir=folder, suffix=".zipmember")
        with os.fdopen(fd, "wb") as out, archive.open(info) as member:
            shutil.copyfileobj(member, out, 1 << 20)
    return out_path


@routes.get("/" + LEVELS)
async def list_resources(request: web.Request) -> web.Response:
    """List the resources of a level (?expand, ?since + ?limit; limit=0 means no limit)."""
    ctx = ctx_of(request)
    level = level_of(request)
    has_since, has_limit = "since" in request.query, "limit" in request.query
    if has_since != has_limit:
        raise OrthancError(ErrorCode.BadRequest, "Missing \"since\" or \"limit\" argument")
    since, limit = int_arg(request, "since"), int_arg(request, "limit")
    if bool_arg(request, "expand") and _requested_tags(request):
        return json_response(await _expanded_with_tags(request, level, None, since, limit))
    if bool_arg(request, "expand"):
        infos = await ctx.index.expand(level, since=since, limit=limit)
        fmt = res.tag_format(request.query)
        return json_response([res.expand_resource(ctx, i, fmt) for i in infos])
    # limit=0 means no limit (Orthanc >= 1.12.5, as in /tools/find); since still applies.
    return json_response(await ctx.index.list_public_ids(level, since, limit))


@routes.get(f"/{LEVELS}/{ID}")
async def get_resource(request: web.Request) -> web.Response:
    """The expanded resource."""
    ctx = ctx_of(request)
    if _requested_tags(request):
        level = level_of(request)
        await res.require(ctx, request.match_info["id"], level)
        found = await _expanded_with_tags(request, level, (level, request.match_info["id"]))
        return json_response(found[0])
    return json_response(await res.get_expanded(ctx, request.match_info["id"], level_of(request),
                                                res.tag_format(request.query)))


@routes.delete(f"/{LEVELS}/{ID}")
async def delete_resource(request: web.Request) -> web.Response:
    """Delete a resource; answers the remaining ancestor."""
    ctx = ctx_of(request)
    return json_response(await delete_service.delete_resource(ctx, request.match_info["id"], level_of(request)))


@routes.post("/tools/bulk-delete")
async def bulk_delete(request: web.Request) -> web.Response:
    """Delete several resources of any level."""
    ctx = ctx_of(request)
    body = await json_body(request)
    resources = body.get("Resources") if isinstance(body, dict) else None
    if not isinstance(resources, list):
        raise OrthancError(ErrorCode.BadRequest, "The body must contain a \"Resources\" array")
    for item in resources:
        if isinstance(item, dict):
            public_id = str(item.get("ID", ""))
            level: ResourceLevel | None = ResourceLevel.parse(str(item.get("Level", "")))
        else:
            public_id, level = str(item), None
        found = await ctx.index.find_internal(public_id, level)
        if found is None:
            continue  # already gone (e.g. with a deleted parent): Orthanc ignores it
        await delete_service.delete_resource(ctx, public_id, found[1])
    return json_response({})


# Children routes: expanded by default (the one exception), ?expand=false gives IDs.
_CHILDREN = [
    ("patients", "studies"), ("patients", "series"), ("patients", "instances"),
    ("studies", "series"), ("studies", "instances"), ("series", "instances"),
]
_PARENTS = [
    ("studies", "patient"), ("series", "patient"), ("series", "study"),
    ("instances", "patient"), ("instances", "study"), ("instances", "series"),
]


def _children_handler(parent: ResourceLevel, child: ResourceLevel) -> Any:
    async def handler(request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        internal, _ = await res.require(ctx, request.match_info["id"], parent)
        if not bool_arg(request, "expand", True):
            return json_response(await ctx.index.children_public_ids(internal, parent, child))
        if _requested_tags(request):
            return json_response(await _expanded_with_tags(request, child, (parent, request.match_info["id"])))
        infos = await ctx.index.expand_children(internal, parent, child)
        fmt = res.tag_format(request.query)
        return json_response([res.expand_resource(ctx, i, fmt) for i in infos])
    handler.__doc__ = f"The {child.plural} of a {parent.type_name.lower()}, expanded by default."
    return handler


def _parent_handler(level: ResourceLevel, target: ResourceLevel) -> Any:
    async def handler(request: web.Request) -> web.Response:
        ctx = ctx_of(request)
        internal, _ = await res.require(ctx, request.match_info["id"], level)
        info = await ctx.index.expand_ancestor(internal, int(level) - int(target), target)
        if info is None:
            raise OrthancError(ErrorCode.UnknownResource)
        return json_response(res.expand_resource(ctx, info, res.tag_format(request.query)))
    handler.__doc__ = f"The parent {target.type_name.lower()} of a {level.type_name.lower()}."
    return handler


for _p, _c in _CHILDREN:
    routes.get(f"/{_p}/{ID}/{_c}")(_children_handler(ResourceLevel.parse(_p), ResourceLevel.parse(_c)))
for _l, _t in _PARENTS:
    routes.get(f"/{_l}/{ID}/{_t}")(_parent_handler(ResourceLevel.parse(_l), ResourceLevel.parse(_t)))


@routes.get(f"/{LEVELS}/{ID}/statistics")
async def resource_statistics(request: web.Request) -> web.Response:
    """Sizes and counts below one resource."""
    return json_response(await res.resource_statistics(ctx_of(request), request.match_info["id"], level_of(request)))


@routes.get(f"/patients/{ID}/protected")
async def get_protected(request: web.Request) -> web.Response:
    """Is the patient protected against recycling (0/1)."""
    ctx = ctx_of(request)
    internal, _ = await res.require(ctx, request.match_info["id"], ResourceLevel.PATIENT)
    return text_response("1" if await ctx.index.is_protected(internal) else "0")


@routes.put(f"/patients/{ID}/protected")
async def set_protected(request: web.Request) -> web.Response:
    """Protect (1) or unprotect (0) a patient against recycling."""
    ctx = ctx_of(request)
    internal, _ = await res.require(ctx, request.match_info["id"], ResourceLevel.PATIENT)
    body = (await request.text()).strip().lower()
    if body in ("1", "true"):
        await ctx.index.set_protected(internal, True)
    elif body in ("0", "false"):
        await ctx.index.set_protected(internal, False)
    else:
        raise OrthancError(ErrorCode.ParameterOutOfRange, "Expected 0, 1, true or false")
    return text_response("")


@routes.post("/tools/lookup")
async def lookup(request: web.Request) -> web.Response:
    """Map a PatientID / StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID to Orthanc resources."""
    ctx = ctx_of(request)
    value = (await request.text()).strip()
    found = await ctx.index.lookup_identifier(value)
    return json_response([{"ID": pid, "Path": f"/{lvl.plural}/{pid}", "Type": lvl.type_name} for lvl, pid in found])


def _wants_dicom_json(request: web.Request) -> bool:
    accepted = (part.split(";")[0].strip().lower() for part in request.headers.get("Accept", "").split(","))
    return "application/dicom+json" in accepted


@routes.get(f"/instances/{ID}/file")
async def instance_file(request: web.Request) -> web.StreamResponse:
    """The DICOM file of an instance (application/dicom), or its DICOM JSON with Accept: application/dicom+json."""
    ctx = ctx_of(request)
    public_id = request.match_info["id"]
    if "transcode" in request.query and not _wants_dicom_json(request):  # DICOM JSON wins, as in Orthanc
        return await transcoded_file(request, public_id)
    internal, _ = await res.require(ctx, public_id, ResourceLevel.INSTANCE)
    attachment = (await ctx.index.attachments_of(internal)).get(1)
    if attachment is None:
        raise OrthancError(ErrorCode.InexistentFile)
    if _wants_dicom_json(request):
        data = await ctx.storage.read(attachment.uuid, attachment.compression != 1)
        body = await ctx.executors.run_cpu(file_to_dicomweb, data, ctx.default_encoding)
        return web.Response(body=json_bytes(body), content_type="application/dicom+json", charset="utf-8")
    filename = request.query.get("filename", f"{public_id}.dcm").replace('"', "")
    headers = {"Content-Disposition": f'filename="{filename}"'}
    if attachment.compression == 1:
        path = ctx.storage.local_path(attachment.uuid)
        if path is not None:
            response = web.FileResponse(path, headers={**headers, "Content-Type": "application/dicom"})
            return response
    data = await ctx.storage.read(attachment.uuid, attachment.compression != 1)
    return web.Response(body=data, content_type="application/dicom", headers=headers)
