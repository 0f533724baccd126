"""ServerContext: owns settings, thread pools, storage, index, change bus, stability tracker and jobs.

Every entry layer (rest/, dicomweb/, dimse/, jobs/) reaches the core through one of these.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from ..config import Settings
from ..executors import Executors
from ..index.sqlite import SqliteIndex
from ..model import AttachmentType, Change, ChangeType, ResourceLevel
from ..storage.filesystem import FilesystemStorage
from .changes import ChangeBus, StabilityTracker, stable_change
from .modalities import Registry


logger = logging.getLogger(__name__)


def now_iso() -> str:
    """UTC, ISO basic, whole seconds: the format of LastUpdate, ReceptionDate and change dates.
    Formatted once per second (each ingest asks several times; strftime showed in profiles)."""
    global _now_cache
    second = int(time.time())
    cached = _now_cache
    if cached[0] != second:
        cached = (second, time.strftime("%Y%m%dT%H%M%S", time.gmtime(second)))
        _now_cache = cached  # one tuple swap: safe from any thread
    return cached[1]


_now_cache: tuple[int, str] = (-1, "")


class ServerContext:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.executors = Executors()
        self.storage = FilesystemStorage(settings.StorageDirectory, self.executors, fsync=bool(settings.SyncStorageArea))
        self.index = SqliteIndex(settings.index_directory, commit_turn=self.executors.cpu_turn)
        self.bus = ChangeBus()
        self.stability = StabilityTracker(float(settings.StableAge), self._on_stable)
        self.registry = Registry(settings, self.index)  # DicomModalities and OrthancPeers, editable at runtime
        # Runtime-mutable settings (PUT /tools/...), as Orthanc keeps them outside its configuration.
        self.default_encoding: str = settings.DefaultEncoding
        self.accepted_transfer_syntaxes: list[str] = list(settings.AcceptedTransferSyntaxes)
        self.unknown_sop_class_accepted: bool = bool(settings.UnknownSopClassAccepted)
        self.dicom_port: int = int(settings.DicomPort)  # the bound port once the DICOM server runs
        self.http_port: int = int(settings.HttpPort)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.extra: dict[str, Any] = {}  # state owned by optional subsystems (dimse server, queries, ...)

    async def open(self) -> None:
        await self.index.open()
        await self.executors.run_io(self.storage.clean_incoming)
        await self._check_consistency()
        await self.registry.load()
        self.stability.start()

    async def close(self) -> None:
        """Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self.stability.stop()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.index.close()
        self.executors.close()

    def track(self, coro: Any) -> asyncio.Task[Any]:
        """Run a background coroutine that close() waits for (never a bare create_task)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def publish(self, raw: list[tuple[int, ChangeType, ResourceLevel, str]], date: str) -> None:
        self.bus.publish([Change(seq, ctype, level, pid, date) for seq, ctype, level, pid in raw])

    async def _on_stable(self, level: ResourceLevel, public_id: str) -> None:
        date = now_iso()
        logged = await self.index.log_change(stable_change(level), public_id, date)
        if logged is not None:
            self.publish([logged], date)

    async def _check_consistency(self) -> None:
        """Start-up check after a crash: no rows without files, no files without rows."""
        in_index = await self.index.all_attachment_uuids()
        on_disk = await self.executors.run_io(self.storage.list_uuids)
        orphan_files = on_disk - set(in_index)
        gone = [(owner, kind) for uuid, (owner, kind) in in_index.items() if uuid not in on_disk]
        for uuid in orphan_files:
            logger.warning("Removing a file that no index row references: %s", uuid)
            await self.storage.remove(uuid)
        if gone:
            # A missing DICOM file loses its instance; a missing user attachment loses only its row.
            instances = [owner for owner, kind in gone if kind == AttachmentType.DICOM]
            others = [(owner, kind) for owner, kind in gone if kind != AttachmentType.DICOM]
            logger.warning("Repairing the index: %d instances and %d attachments have lost their file",
                           len(instances), len(others))
            await self.index.remove_orphan_rows(instances, others)

    def storage_dir(self) -> str:
        return os.path.abspath(self.settings.StorageDirectory)
