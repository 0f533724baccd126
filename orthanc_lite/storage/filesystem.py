"""Default storage area: files under StorageDirectory at <uuid[0:2]>/<uuid[2:4]>/<uuid>, as Orthanc lays them out.

Writes go to a temporary file, are fsynced, then renamed, so a crash never leaves a half-written attachment
under a real name. All file-system calls run in the io pool.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import struct
import zlib
from typing import Callable

from ..executors import Executors
from .base import StoredFile, unlink_quietly

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


class FilesystemStorage:
    def __init__(self, root: str, executors: Executors, fsync: bool = True) -> None:
        self.root = os.path.abspath(root)
        self._executors = executors
        self._fsync = fsync
        self._incoming = os.path.join(self.root, ".incoming")
        os.makedirs(self._incoming, exist_ok=True)

    def incoming_dir(self) -> str:
        return self._incoming

    def path(self, uuid: str) -> str:
        # uuid is always made by us (uuid4 text); checked anyway so no request can steer a path.
        if len(uuid) != 36 or any(c not in "0123456789abcdef-" for c in uuid):
            raise ValueError(f"Bad attachment uuid: {uuid!r}")
        return os.path.join(self.root, uuid[0:2], uuid[2:4], uuid)

    def local_path(self, uuid: str) -> str | None:
        return self.path(uuid)

    async def create_from_file(self, src_path: str, uuid: str, md5: str | None, compress: bool) -> StoredFile:
        return await self._executors.run_io(self._create_from_file_sync, src_path, uuid, md5, compress)

    def create_from_bytes_sync(self, data: bytes, uuid: str, compress: bool) -> StoredFile:
        """Write a small attachment held in memory, fsynced. Written under its final name: no index row
        references it before this returns, and the start-up check removes files that no row references."""
        stored, make_durable = self.write_bytes(data, uuid, compress)
        make_durable()
        return stored

    def write_bytes(self, data: bytes, uuid: str, compress: bool) -> tuple[StoredFile, Callable[[], None]]:
        """`create_from_bytes_sync` without its fsync: `make_durable()` (any thread, exactly once) fsyncs and
        closes the file. The ingest runs it beside its index statements; the commit waits for it."""
        dest = self.path(uuid)
        md5 = hashlib.md5(data).hexdigest()
        payload = struct.pack("<Q", len(data)) + zlib.compress(data, 6) if compress else data
        try:
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view):]
        except BaseException:
            os.close(fd)
            unlink_quietly(dest)
            raise

        make_durable = functools.partial(_fsync_fd if self._fsync else os.close, fd)
        cmd5 = hashlib.md5(payload).hexdigest() if compress else md5
        return StoredFile(uuid, len(data), len(payload), md5, cmd5, compress), make_durable

    def _create_from_file_sync(self, src_path: str, uuid: str, md5: str | None, compress: bool) -> StoredFile:
        """Take ownership of a finished temporary file (renamed when uncompressed)."""
        stored, make_durable = self.adopt_file(src_path, uuid, md5, compress)
        make_durable()
        return stored

    def adopt_file(self, src_path: str, uuid: str, md5: str | None,
                   compress: bool) -> tuple[StoredFile, Callable[[], None]]:
        """`create_from_file` without the fsync of an uncompressed file: run `make_durable()` (any
        thread) before the index commits. Until then no row names the file, and the start-up check
        removes a file that no row names."""
        dest = self.path(uuid)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        size = os.path.getsize(src_path)
        if not compress:
            if md5 is None:
                md5 = _file_md5(src_path)
            os.replace(src_path, dest)
            if not self._fsync:
                return StoredFile(uuid, size, size, md5, md5, False), _nothing
            # Opened here, so that the fsync thread's first blocking call is the fsync itself (each call
            # releases the GIL, and getting it back waits for whatever pure-Python work runs meanwhile).
            fd = os.open(dest, os.O_RDONLY)
            return StoredFile(uuid, size, size, md5, md5, False), functools.partial(_fsync_fd, fd)
        return self._compress_file(src_path, dest, uuid, size, md5), _nothing

    def _compress_file(self, src_path: str, dest: str, uuid: str, size: int, md5: str | None) -> StoredFile:
        # zlib-with-size: 8-byte little-endian uncompressed size, then a zlib stream (Orthanc's ZlibCompressor).
        tmp = dest + ".tmp"
        raw_md5 = hashlib.md5()
        out_md5 = hashlib.md5()
        compressor = zlib.compressobj(6)
        written = 0
        with open(src_path, "rb") as src, open(tmp, "wb") as out:
            head = struct.pack("<Q", size)
            out.write(head)
            out_md5.update(head)
            written += len(head)
            while chunk := src.read(_CHUNK):
                raw_md5.update(chunk)
                data = compressor.compress(chunk)
                out.write(data)
                out_md5.update(data)
                written += len(data)
            data = compressor.flush()
            out.write(data)
            out_md5.update(data)
            written += len(data)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
        os.replace(tmp, dest)
        os.unlink(src_path)
        return StoredFile(uuid, size, written, md5 or raw_md5.hexdigest(), out_md5.hexdigest(), True)

    async def read(self, uuid: str, compressed: bool = False) -> bytes:
        return await self._executors.run_io(self.read_sync, uuid, compressed)

    def read_sync(self, uuid: str, compressed: bool = False) -> bytes:
        with open(self.path(uuid), "rb") as f:
            data = f.read()
        if compressed:
            return zlib.decompress(data[8:]) if len(data) > 8 else b""
        return data

    async def read_range(self, uuid: str, start: int, end: int, compressed: bool = False) -> bytes:
        if compressed:
            data = await self.read(uuid, True)
            return data[start:end]
        return await self._executors.run_io(self._read_range_sync, uuid, start, end)

    def _read_range_sync(self, uuid: str, start: int, end: int) -> bytes:
        with open(self.path(uuid), "rb") as f:
            f.seek(start)
            return f.read(max(0, end - start))

    async def remove(self, uuid: str) -> None:
        await self._executors.run_io(self.remove_sync, uuid)

    def remove_sync(self, uuid: str) -> None:
        path = self.path(uuid)
        try:
            os.unlink(path)
        except FileNotFoundError:
            logger.warning("Attachment already missing from storage: %s", uuid)
            return
        for parent in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
            try:
                os.rmdir(parent)  # only succeeds when empty, as Orthanc cleans up its shard folders
            except OSError:
                break

    def list_uuids(self) -> set[str]:
        """Every attachment on disk (sync; used by the start-up consistency check)."""
        found: set[str] = set()
        for first in os.listdir(self.root):
            if len(first) != 2:
                continue
            d1 = os.path.join(self.root, first)
            if not os.path.isdir(d1):
                continue
            for second in os.listdir(d1):
                d2 = os.path.join(d1, second)
                if not os.path.isdir(d2):
                    continue
                for name in os.listdir(d2):
                    if len(name) == 36:
                        found.add(name)
                    elif name.endswith(".tmp"):  # a compressed write interrupted by a crash
                        os.unlink(os.path.join(d2, name))
        return found

    def clean_incoming(self) -> None:
        """Remove spooled bodies left by a crash (sync, at start-up)."""
        for name in os.listdir(self._incoming):
            try:
                os.unlink(os.path.join(self._incoming, name))
            except OSError:
                pass


def _file_md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()



def _fsync_fd(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _nothing() -> None:
    pass
