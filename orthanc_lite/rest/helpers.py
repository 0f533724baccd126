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

_JSON_OPTS = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data, option=_JSON_OPTS), status=status, headers=headers,
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


async def spool_stream(ctx: ServerContext, stream: Any, max_bytes: int) -> SpooledBody:
    """Copy a request body (or a multipart part) to a temporary file under StorageDirectory, chunk by chunk.

    Over max_bytes the file is removed and the client gets 413. The MD5 is computed on the way.
    """
    fd, path = tempfile.mkstemp(dir=ctx.storage.incoming_dir(), suffix=".part")
    os.close(fd)
    md5 = hashlib.md5()
    size = 0
    head = b""
    f = await ctx.executors.run_io(open, path, "wb")
    try:
        pending: list[bytes] = []
        pending_size = 0
        while True:
            chunk = await (stream.read_chunk(1 << 20) if hasattr(stream, "read_chunk") else stream.readany())
            if isinstance(chunk, tuple):
                chunk = chunk[0]
            if not chunk:
                break
            size += len(chunk)
            if max_bytes and size > max_bytes:
                raise web.HTTPRequestEntityTooLarge(max_size=max_bytes, actual_size=size)
            if len(head) < 132:
                head += chunk[: 132 - len(head)]
            md5.update(chunk)
            pending.append(chunk)
            pending_size += len(chunk)
            if pending_size >= (1 << 20):
                await ctx.executors.run_io(f.write, b"".join(pending))
                pending, pending_size = [], 0
        if pending:
            data = b"".join(pending)
            if size > (1 << 20):
                await ctx.executors.run_io(f.write, data)
            else:
                f.write(data)  # small bodies: one buffered write costs less than a thread hop
        await ctx.executors.run_io(f.close)
    except BaseException:
        f.close()
        try:
            os.unlink(path)
        except OSError:
            pass
        raise
    return SpooledBody(path, size, md5.hexdigest(), head)


def max_body_bytes(ctx: ServerContext) -> int:
    return int(ctx.settings.MaximumRequestBodySizeMB) * 1024 * 1024
