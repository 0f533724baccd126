"""The storage area interface: attachments keyed by server-made UUIDs (never by anything from the DICOM file)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Protocol


@dataclass(frozen=True, slots=True)
class StoredFile:
    uuid: str
    uncompressed_size: int
    compressed_size: int
    uncompressed_md5: str
    compressed_md5: str
    compressed: bool


class StorageArea(Protocol):
    """Five operations, as Orthanc's IStorageArea: create, read, read_range, path, remove."""

    async def create_from_file(self, src_path: str, uuid: str, md5: str | None, compress: bool) -> StoredFile:
        """Take ownership of the finished temporary file at src_path (it is moved, not copied, when possible)."""
        ...

    def create_from_bytes_sync(self, data: bytes, uuid: str, compress: bool) -> StoredFile:
        """Blocking: write an attachment held in memory (called from a worker thread)."""
        ...

    def write_bytes(self, data: bytes, uuid: str, compress: bool) -> tuple[StoredFile, Callable[[], None]]:
        """create_from_bytes_sync in two steps: the write, then `make_durable()` (its fsync)."""
        ...

    def adopt_file(self, src_path: str, uuid: str, md5: str | None,
                   compress: bool) -> tuple[StoredFile, Callable[[], None]]:
        """Blocking create_from_file in two steps: the move, then `make_durable()` (its fsync)."""
        ...

    async def read(self, uuid: str) -> bytes:
        """The whole (uncompressed) attachment."""
        ...

    async def read_range(self, uuid: str, start: int, end: int) -> bytes:
        ...

    def local_path(self, uuid: str) -> str | None:
        """A path to serve directly (sendfile) when the attachment is stored uncompressed on a local disk."""
        ...

    async def remove(self, uuid: str) -> None:
        ...

    def remove_sync(self, uuid: str) -> None:
        """Blocking twin of remove (the ingest pipeline undoes its write from a worker thread)."""
        ...

    def incoming_dir(self) -> str:
        """Where request bodies are spooled, on the same file system so that create_from_file is a rename."""
        ...


def unlink_quietly(path: str) -> None:
    """Best-effort removal of a spooled or half-written file: never raises (the start-up check removes
    whatever a failure leaves in the storage area)."""
    try:
        os.unlink(path)
    except OSError:
        pass
