"""/{level}/{id}/attachments: list, read (with HTTP Range), sizes, MD5s, user attachments PUT/DELETE,
compress/uncompress/verify-md5 (~ the attachment handlers of OrthancRestResources.cpp).

As in Orthanc, the routes that name one attachment find the resource by its ID alone (the level in the URI
is not checked); only the list checks it.
"""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp import web

from ..errors import ErrorCode
from ..model import AttachmentInfo
from ..services import metadata as md
from ..services.context import ServerContext
from .helpers import ctx_of, json_response, level_of, max_body_bytes, receive_body
from .metadata import ID, LEVELS, conditional_answer, if_match
from .middleware import error_response

logger = logging.getLogger(__name__)
routes = web.RouteTableDef()

NAME: Final = "{name}"
_PLAIN: Final = "text/plain"
_CHUNK: Final = 1 << 20
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def _target(request: web.Request) -> tuple[ServerContext, str, int]:
    ctx = ctx_of(request)
    return ctx, request.match_info["id"], md.content_type(ctx.settings, request.match_info["name"])


def _json_text(text: str) -> web.Response:
    return web.Response(body=text.encode(), content_type="application/json")


def _plain(text: str, info: AttachmentInfo) -> web.Response:
    return web.Response(body=text.encode(), content_type=_PLAIN, headers=_etag(info))


def _etag(info: AttachmentInfo) -> dict[str, str]:
    return {"ETag": md.etag(info.revision, info.uncompressed_md5)}


async def _lookup(request: web.Request) -> AttachmentInfo | web.Response:
    """The attachment named in the URI, or the answer that If-None-Match decides (304, or 400 when malformed)."""
    ctx, public_id, ftype = _target(request)
    info = await md.attachment_info(ctx, public_id, None, ftype)
    conditional = conditional_answer(request, info.revision, info.uncompressed_md5)
    return info if conditional is None else conditional


@routes.get(f"/{LEVELS}/{ID}/attachments")
async def list_attachments(request: web.Request) -> web.Response:
    """The attachments of a resource by name (?full maps each name to its number)."""
    ctx = ctx_of(request)
    items = await md.list_attachments(ctx, request.match_info["id"], level_of(request))
    if "full" in request.query:
        return json_response({md.content_type_name(ctx.settings, k): k for k in items})
    return json_response([md.content_type_name(ctx.settings, k) for k in items])


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}")
async def attachment_operations(request: web.Request) -> web.Response:
    """The operations available on one attachment."""
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    ops = ["compress", "compressed-data"]
    if info.compressed_md5:
        ops.append("compressed-md5")
    ops += ["compressed-size", "data", "info", "is-compressed"]
    if info.uncompressed_md5:
        ops.append("md5")
    ops += ["size", "uncompress"]
    if info.compressed_md5 and info.uncompressed_md5:
        ops.append("verify-md5")
    ops.append("uuid")  # listed by Orthanc too
    return json_response(ops, headers=_etag(info))


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/data")
async def attachment_data(request: web.Request) -> web.StreamResponse:
    """The content of an attachment, decompressed; honours a single-range Range header (206/416)."""
    return await _answer_content(request, as_stored=False)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/compressed-data")
async def attachment_compressed_data(request: web.Request) -> web.StreamResponse:
    """The content of an attachment as stored on disk (zlib-with-size when StorageCompression was on)."""
    return await _answer_content(request, as_stored=True)


async def _answer_content(request: web.Request, as_stored: bool) -> web.StreamResponse:
    ctx = ctx_of(request)
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    headers = {**_etag(info), "Accept-Ranges": "bytes"}
    if as_stored:
        total, mime = info.compressed_size, "application/octet-stream"
    else:
        total, mime = info.uncompressed_size, md.content_type_mime(ctx.settings, info.content_type)
        headers["Content-Disposition"] = f'filename="{info.uuid}{md.content_type_extension(info.content_type)}"'
    range_header = request.headers.get("Range")
    if range_header is not None:
        bounds = _parse_range(range_header, total)
        if bounds is None:
            return error_response(request, 416, ErrorCode.BadRange, f"Cannot satisfy the range: {range_header}",
                                  headers={"Content-Range": f"bytes */{total}"})
        start, end = bounds
        data = await md.read_attachment(ctx, info, as_stored, start, end + 1)
        headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{total}"
        # A part of a file is no DICOM file: Orthanc answers any range as application/octet-stream.
        return web.Response(status=206, body=data, content_type="application/octet-stream", headers=headers)
    if info.compression != md.COMPRESSION_NONE and not as_stored:
        return web.Response(body=await md.read_attachment(ctx, info), content_type=mime, headers=headers)
    # Stored as is: stream it in chunks, never the whole file in memory.
    first = await md.read_attachment(ctx, info, True, 0, _CHUNK)
    if len(first) < _CHUNK:
        return web.Response(body=first, content_type=mime, headers=headers)
    response = web.StreamResponse(headers={**headers, "Content-Type": mime})
    response.content_length = total
    await response.prepare(request)
    if request.method == "HEAD":  # aiohttp does not drop what a StreamResponse writes
        await response.write_eof()
        return response
    try:
        await response.write(first)
        offset = len(first)
        while offset < total:
            chunk = await md.read_attachment(ctx, info, True, offset, min(offset + _CHUNK, total))
            if not chunk:
                break
            await response.write(chunk)
            offset += len(chunk)
        await response.write_eof()
    except ConnectionResetError:  # the client went away: nothing left to answer
        logger.info("Client disconnected while downloading attachment %s", info.uuid)
    return response


def _parse_range(header: str, total: int) -> tuple[int, int] | None:
    """A single `bytes=a-b` range as inclusive bounds, None when unsatisfiable. As Orthanc (>= 1.12.5), a missing
    bound means the start or the end of the content: `bytes=-` is everything and `bytes=-131` is bytes 0 to 131
    (not the last 131 bytes, as RFC 9110 would have it)."""
    match = _RANGE.fullmatch(header.strip())
    if match is None or total == 0:
        return None
    start = int(match[1]) if match[1] else 0
    end = int(match[2]) if match[2] else total - 1
    if start >= total or end < start:
        return None
    return start, min(end, total - 1)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/size")
async def attachment_size(request: web.Request) -> web.Response:
    """The uncompressed size of an attachment."""
    info = await _lookup(request)
    return info if isinstance(info, web.Response) else _plain(str(info.uncompressed_size), info)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/compressed-size")
async def attachment_compressed_size(request: web.Request) -> web.Response:
    """The size of an attachment as stored on disk."""
    info = await _lookup(request)
    return info if isinstance(info, web.Response) else _plain(str(info.compressed_size), info)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/md5")
async def attachment_md5(request: web.Request) -> web.Response:
    """The MD5 of the uncompressed content (404 when StoreMD5ForAttachments was off)."""
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    return _plain(info.uncompressed_md5, info) if info.uncompressed_md5 else web.Response(status=404)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/compressed-md5")
async def attachment_compressed_md5(request: web.Request) -> web.Response:
    """The MD5 of the attachment as stored on disk (404 when StoreMD5ForAttachments was off)."""
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    return _plain(info.compressed_md5, info) if info.compressed_md5 else web.Response(status=404)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/is-compressed")
async def attachment_is_compressed(request: web.Request) -> web.Response:
    """1 when the attachment is stored compressed, else 0."""
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    return _plain("0" if info.compression == md.COMPRESSION_NONE else "1", info)


@routes.get(f"/{LEVELS}/{ID}/attachments/{NAME}/info")
async def attachment_info(request: web.Request) -> web.Response:
    """Uuid, ContentType, sizes and MD5s of an attachment."""
    info = await _lookup(request)
    if isinstance(info, web.Response):
        return info
    return json_response({
        "Uuid": info.uuid,
        "ContentType": info.content_type,
        "UncompressedSize": info.uncompressed_size,
        "CompressedSize": info.compressed_size,
        "UncompressedMD5": info.uncompressed_md5,
        "CompressedMD5": info.compressed_md5,
    }, headers=_etag(info))


@routes.put(f"/{LEVELS}/{ID}/attachments/{NAME}")
async def put_attachment(request: web.Request) -> web.Response:
    """Attach a file (user content types 1024..65535 or UserContentType names); If-Match as for metadata."""
    ctx, public_id, ftype = _target(request)
    if not md.is_user_content_type(ftype):
        return web.Response(status=403)  # "dicom" and the other built-in attachments are read-only
    expected = if_match(request)
    body = await receive_body(ctx, request.content, max_body_bytes(ctx))
    if isinstance(body, bytes):
        revision, md5 = await md.put_attachment(ctx, public_id, None, ftype, expected, data=body)
    else:
        revision, md5 = await md.put_attachment(ctx, public_id, None, ftype, expected, spooled=(body.path, body.md5))
    return web.Response(body=b"{}", content_type="application/json", headers={"ETag": md.etag(revision, md5)})


@routes.delete(f"/{LEVELS}/{ID}/attachments/{NAME}")
async def delete_attachment(request: web.Request) -> web.Response:
    """Delete a user attachment (or the legacy dicom-as-json); If-Match is mandatory with CheckRevisions."""
    ctx, public_id, ftype = _target(request)
    if not md.can_delete_attachment(ftype):
        return web.Response(status=403)
    await md.delete_attachment(ctx, public_id, None, ftype, if_match(request))
    return web.Response(body=b"", content_type=_PLAIN)


@routes.post(f"/{LEVELS}/{ID}/attachments/{NAME}/compress")
async def compress_attachment(request: web.Request) -> web.Response:
    """Store the attachment compressed (zlib-with-size)."""
    ctx, public_id, ftype = _target(request)
    await md.change_compression(ctx, public_id, None, ftype, True)
    return _json_text("{}")


@routes.post(f"/{LEVELS}/{ID}/attachments/{NAME}/uncompress")
async def uncompress_attachment(request: web.Request) -> web.Response:
    """Store the attachment uncompressed."""
    ctx, public_id, ftype = _target(request)
    await md.change_compression(ctx, public_id, None, ftype, False)
    return _json_text("{}")


@routes.post(f"/{LEVELS}/{ID}/attachments/{NAME}/verify-md5")
async def verify_attachment_md5(request: web.Request) -> web.Response:
    """Check the stored bytes against their MD5: {} when right; an empty 400 when wrong or without MD5."""
    ctx, public_id, ftype = _target(request)
    if await md.verify_md5(ctx, public_id, ftype):
        return _json_text("{}")
    return web.Response(status=400)

