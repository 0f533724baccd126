"""Shared REST plumbing: JSON answers (orjson), Orthanc's argument rules, body spooling with a size cap."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..app_keys import CONTEXT
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services.context import ServerContext
from ..storage.base import unlink_quietly

_JSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def json_bytes(data: Any) -> bytes:
    """The JSON of every answer: indented by 2, keys sorted (as Orthanc's jsoncpp writer)."""
    return orjson.dumps(data, option=_JSON_OPTS)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=json_bytes(data), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def text_response(text: str, content_type: str = "text/plain") -> web.Response:
    return web.Response(text=text, content_type=content_type, charset="utf-8")


def ctx_of(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


def bool_arg(request: web.Request, name: str, default: bool = False) -> bool:
    """Present with no value = true; true/false/1/0; anything else is a 400 (Orthanc's rule)."""
    if name not in request.query:
        return default
    value = request.query[name].strip().lower()
    if value in ("", "true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise OrthancError(ErrorCode.ParameterOutOfRange, f"Value for GET argument \"{name}\" must be a Boolean: {value}")


def int_arg(request: web.Request, name: str, default: int = 0) -> int:
    if name not in request.query:
        return default
    try:
        value = int(request.query[name])
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Argument \"{name}\" must be an integer") from None
    if value < 0:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Argument \"{name}\" must be a positive integer")
    return value


def level_of(request: web.Request) -> ResourceLevel:
    return ResourceLevel.parse(request.match_info["level"])


async def json_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BadFileFormat, "The body must contain a JSON object") from None


async def json_object_body(request: web.Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BadFileFormat, "The body must contain a JSON object")
    return body


@dataclass(frozen=True, slots=True)
class SpooledBody:
    path: str
    size: int
    md5: str
    head: bytes


MEMORY_BODY_LIMIT = 4 * 1024 * 1024  # bodies up to this size are handled in memory (one thread hop to store)


async def receive_body(ctx: ServerContext, stream: Any, max_bytes: int,
                       memory_limit: int = MEMORY_BODY_LIMIT) -> bytes | SpooledBody:
    """Read a request body (or a multipart part): in memory while small, else spooled to a temporary file
    under StorageDirectory, chunk by chunk. Over max_bytes the client gets 413 and nothing is kept."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await _read_chunk(stream)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if max_bytes and size > max_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=size)
        chunks.append(chunk)
        if size > memory_limit:
            return await _spool(ctx, stream, chunks, size, max_bytes)


async def _read_chunk(stream: Any) -> bytes:
    if hasattr(stream, "read_chunk"):
        return bytes(await stream.read_chunk(1 << 20))
    return bytes(await stream.readany())


async def _spool(ctx: ServerContext, stream: Any, first: list[bytes], size: int, max_bytes: int) -> SpooledBody:
    md5 = hashlib.md5()
    head = b"".join(first)[:132]
    fd, path = await ctx.executors.run_io(tempfile.mkstemp, ".part", "body", ctx.storage.incoming_dir())
    f = os.fdopen(fd, "wb")
    try:
        pending = first
        while True:
            for chunk in pending:
                md5.update(chunk)
            await ctx.executors.run_io(f.writelines, pending)
            chunk = await _read_chunk(stream)
            if not chunk:
                break
            size += len(chunk)
            if max_bytes and size > max_bytes:
                raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=size)
            pending = [chunk]
        await ctx.executors.run_io(f.close)
    except BaseException:
        f.close()
        await ctx.executors.run_io(unlink_quietly, path)
        raise
    return SpooledBody(path, size, md5.hexdigest(), head)



def max_body_bytes(ctx: ServerContext) -> int:
    return int(ctx.settings.MaximumRequestBodySizeMB) * 1024 * 1024
