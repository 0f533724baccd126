"""POST /instances as Orthanc Explorer (jQuery File Upload) sends it: multipart/form-data with one or several
files, tolerant header syntax (whitespace around ":", ";" and "="), and the chunked mode (X-File-Name,
X-File-Size, one chunk per request; the file is stored when its last chunk arrives). Orthanc answers 200 with an
empty body. Part and chunk bytes go to server-named temporary files: no client name ever reaches a path.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import mmap
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Final

from aiohttp import web

from ..errors import ErrorCode, OrthancError
from ..services.context import ServerContext
from ..storage.base import unlink_quietly
from .helpers import SpooledBody, max_body_bytes, receive_body

logger = logging.getLogger(__name__)

StoreBody = Callable[[bytes | SpooledBody], Awaitable[list[dict[str, Any]]]]

MAX_PENDING_UPLOADS: Final = 16  # chunked uploads in progress; the least recently fed one is dropped beyond
FILE_FIELDS: Final = frozenset({"files[]", "files", "file"})


def parse_header(value: str) -> tuple[str, dict[str, str]]:
    """`type ; key = "value" ; ...` -> ("type", {"key": "value"}), whitespace-tolerant, keys lower-cased."""
    items = value.split(";")
    params: dict[str, str] = {}
    for item in items[1:]:
        key, sep, raw = item.partition("=")
        if sep:
            params[key.strip().lower()] = raw.strip().strip('"')
    return items[0].strip().lower(), params


@dataclass(frozen=True, slots=True)
class FormPart:
    headers: dict[str, str]
    start: int
    end: int

    @property
    def disposition(self) -> dict[str, str]:
        return parse_header(self.headers.get("content-disposition", ""))[1]


def split_form(data: bytes | mmap.mmap, boundary: str) -> list[FormPart]:
    """The parts of a multipart body: headers (names lower-cased, spaces around ':' ignored) and the byte
    range of each content. A missing closing "--boundary--" (jQuery chunks end with "--boundary") is accepted."""
    delimiter = b"--" + boundary.encode("latin-1")
    parts: list[FormPart] = []
    position = data.find(delimiter)
    while position >= 0:
        after = position + len(delimiter)
        if data[after:after + 2] == b"--":
            break  # the closing delimiter
        header_start = data.find(b"\r\n", after)
        if header_start < 0:
            break
        header_end = data.find(b"\r\n\r\n", header_start)
        if header_end < 0:
            raise OrthancError(ErrorCode.BadRequest, "Malformed multipart part: no end of headers")
        headers: dict[str, str] = {}
        for line in bytes(data[header_start + 2:header_end]).decode("utf-8", "replace").split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        content_start = header_end + 4
        following = data.find(b"\r\n" + delimiter, content_start)
        content_end = following if following >= 0 else len(data)
        parts.append(FormPart(headers, content_start, content_end))
        position = following + 2 if following >= 0 else -1
    return parts


@dataclass
class _PendingUpload:
    path: str
    expected: int
    received: int = 0
    md5: Any = field(default_factory=hashlib.md5)


class ChunkStore:
    """The chunked uploads in progress, by file name (as Orthanc's HTTP server keeps them): bounded in number,
    each one a server-named temporary file that grows until it reaches X-File-Size."""

    def __init__(self) -> None:
        self._pending: collections.OrderedDict[str, _PendingUpload] = collections.OrderedDict()
        self._lock = asyncio.Lock()  # one chunk at a time: two requests must not interleave their appends

    def in_progress(self, name: str) -> bool:
        return name in self._pending

    async def add(self, ctx: ServerContext, name: str, expected: int,
                  chunk: bytes | SpooledBody) -> SpooledBody | None:
        """Append one chunk (consumed); the whole file once its last chunk arrived, else None."""
        async with self._lock:
            return await self._add(ctx, name, expected, chunk)

    async def _add(self, ctx: ServerContext, name: str, expected: int,
                   chunk: bytes | SpooledBody) -> SpooledBody | None:
        pending = self._pending.pop(name, None)
        if pending is None or pending.expected != expected:
            if pending is not None:
                await ctx.executors.run_io(unlink_quietly, pending.path)
            fd, path = await ctx.executors.run_io(tempfile.mkstemp, ".part", "chunks", ctx.storage.incoming_dir())
            await ctx.executors.run_io(os.close, fd)
            pending = _PendingUpload(path, expected)
        pending.received += await ctx.executors.run_io(_append, pending.path, chunk, pending.md5)
        if pending.received > expected:
            await ctx.executors.run_io(unlink_quietly, pending.path)
            raise OrthancError(ErrorCode.BadRequest, f"The chunks of {name} exceed its X-File-Size ({expected})")
        if pending.received == expected:
            head = await ctx.executors.run_io(_head, pending.path)
            return SpooledBody(pending.path, expected, pending.md5.hexdigest(), head)
        self._pending[name] = pending
        while len(self._pending) > MAX_PENDING_UPLOADS:
            _, dropped = self._pending.popitem(last=False)
            logger.warning("Dropping an unfinished chunked upload (more than %d in progress)", MAX_PENDING_UPLOADS)
            await ctx.executors.run_io(unlink_quietly, dropped.path)
        return None

    def close(self) -> None:
        """Remove the files of the uploads never finished (at shutdown)."""
        for pending in self._pending.values():
            unlink_quietly(pending.path)
        self._pending.clear()


CHUNKS: Final = web.AppKey("upload_chunks", ChunkStore)


def setup(app: web.Application) -> None:
    """Give the application its store of chunked uploads, emptied at shutdown."""
    store = ChunkStore()
    app[CHUNKS] = store

    async def close(_: web.Application) -> None:
        store.close()

    app.on_cleanup.append(close)


async def receive_form(request: web.Request, ctx: ServerContext, boundary: str, store: StoreBody) -> int:
    """Store every file of a multipart/form-data upload (or feed its chunk); answers the number stored."""
    requested_with = request.headers.get("X-Requested-With")
    if requested_with is not None and requested_with != "XMLHttpRequest":
        raise OrthancError(ErrorCode.BadRequest, "X-Requested-With must be XMLHttpRequest")
    if not boundary:
        raise OrthancError(ErrorCode.BadRequest, "multipart/form-data without a boundary")
    body = await receive_body(ctx, request.content, max_body_bytes(ctx))
    try:
        files = await _file_contents(ctx, body, boundary)
    finally:
        if isinstance(body, SpooledBody):
            await ctx.executors.run_io(unlink_quietly, body.path)
    size_header = request.headers.get("X-File-Size")
    stored = 0
    try:
        while files:
            name, content = files.pop(0)
            if size_header is not None:
                whole = await _feed_chunk(request, ctx, request.headers.get("X-File-Name") or name, size_header,
                                          content)
                if whole is None:
                    continue
                content = whole
            await store(content)
            stored += 1
    finally:
        for _, left in files:  # parts never reached because an earlier one failed
            if isinstance(left, SpooledBody):
                await ctx.executors.run_io(unlink_quietly, left.path)
    return stored


async def _feed_chunk(request: web.Request, ctx: ServerContext, name: str, size_header: str,
                      content: bytes | SpooledBody) -> bytes | SpooledBody | None:
    try:
        expected = int(size_header)
    except ValueError:
        raise OrthancError(ErrorCode.BadRequest, f"Bad X-File-Size: {size_header}") from None
    if expected < 0 or expected > max_body_bytes(ctx) > 0:
        raise OrthancError(ErrorCode.BadRequest, f"Bad X-File-Size: {size_header}")
    chunks = request.app[CHUNKS]
    size = content.size if isinstance(content, SpooledBody) else len(content)
    if size == expected and not chunks.in_progress(name):
        return content  # the whole file in one request
    return await chunks.add(ctx, name, expected, content)


async def _file_contents(ctx: ServerContext, body: bytes | SpooledBody,
                         boundary: str) -> list[tuple[str, bytes | SpooledBody]]:
    """(file name, content) of each file part; parts of a spooled body are copied to their own files."""
    if isinstance(body, bytes):
        parts = split_form(body, boundary)
        return [(_file_name(p), body[p.start:p.end]) for p in parts if _is_file(p)]
    return await ctx.executors.run_io(_spooled_files, body.path, boundary, ctx.storage.incoming_dir())


def _spooled_files(path: str, boundary: str, folder: str) -> list[tuple[str, bytes | SpooledBody]]:
    """Worker thread: split a spooled body through mmap (never loaded whole) and copy each file part out."""
    result: list[tuple[str, bytes | SpooledBody]] = []
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as view:
        for part in split_form(view, boundary):
            if not _is_file(part):
                continue
            fd, target = tempfile.mkstemp(".part", "form", folder)
            md5 = hashlib.md5()
            with os.fdopen(fd, "wb") as out:
                for offset in range(part.start, part.end, 1 << 20):
                    block = view[offset:min(offset + (1 << 20), part.end)]
                    md5.update(block)
                    out.write(block)
            result.append((_file_name(part), SpooledBody(target, part.end - part.start, md5.hexdigest(),
                                                         view[part.start:part.start + 132])))
    return result


def _is_file(part: FormPart) -> bool:
    disposition = part.disposition
    return "filename" in disposition or disposition.get("name") in FILE_FIELDS


def _file_name(part: FormPart) -> str:
    return part.disposition.get("filename", "")


def _append(path: str, chunk: bytes | SpooledBody, md5: Any) -> int:
    """Worker thread: append a chunk (a spooled one is copied block by block, then removed); its size."""
    with open(path, "ab") as out:
        if isinstance(chunk, bytes):
            out.write(chunk)
            md5.update(chunk)
            return len(chunk)
        try:
            with open(chunk.path, "rb") as f:
                while block := f.read(1 << 20):
                    out.write(block)
                    md5.update(block)
        finally:
            unlink_quietly(chunk.path)
        return chunk.size


def _head(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(132)

