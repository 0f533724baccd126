"""ZIP archives and DICOMDIR media of stored resources (Orthanc's ArchiveJob), produced chunk by chunk.

plan_archive() reads the index once; ArchiveProducer.next_chunk() then does one bounded unit of work per
call (lay out a member read and deflated ahead in the io/cpu pools, or read and deflate CHUNK bytes of a large
one) and returns the next ZIP bytes. Memory stays flat whatever the archive size; the caller decides where the bytes go (an
HTTP stream that applies backpressure, or a temporary file for asynchronous jobs), and stops the work by
no longer asking (a client that disconnects).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Final

from ..dicom.dicomdir import DicomDirBuilder, InstanceRecords, record
from ..errors import ErrorCode, OrthancError
from ..index.archive import ArchiveContent, ArchivedInstance
from .archive_names import (PATIENT_PARTS, SERIES_PARTS, STUDY_PARTS, MODALITY, UniqueNames, folder_name,
                            instance_format, instance_numbers)
from .context import ServerContext
from .zipstream import Deflated, StreamDeflater, ZipStreamWriter, deflate_member

logger = logging.getLogger(__name__)

CHUNK: Final = 4 * 1024 * 1024         # bytes read and deflated per step of a large member
SMALL_MEMBER: Final = 16 * 1024 * 1024  # members up to this size are read whole and deflated ahead, in parallel
LOOKAHEAD: Final = 3                    # small members in flight: memory <= LOOKAHEAD x (SMALL_MEMBER + deflated)
# zlib level 2, not Orthanc's 6: on CT-like slices and the shared test files, 5x the MB/s for archives about 4%
# larger (deflate gains little on pixel data beyond its fast strategies).
COMPRESSION_LEVEL: Final = 2
MEDIA_FOLDER: Final = "IMAGES"

# A transcoder: (DICOM bytes, target transfer syntax UID, lossy quality) -> new bytes, or None if it cannot.
Transcoder = Callable[[bytes, str, int | None], bytes | None]


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    name: str                       # path inside the ZIP
    keys: tuple[str, str, str]      # Orthanc IDs of the patient, study, series (DICOMDIR grouping)
    instance: ArchivedInstance


@dataclass(frozen=True, slots=True)
class ArchivePlan:
    entries: list[ArchiveEntry]
    media: bool
    extended: bool
    transcode: str | None = None
    lossy_quality: int | None = None

    @property
    def uncompressed_size(self) -> int:
        return sum(e.instance.size for e in self.entries)


async def plan_archive(ctx: ServerContext, resources: list[str], media: bool, extended: bool = False,
                       transcode: str | None = None, lossy_quality: int | None = None,
                       utf8: bool | None = None) -> ArchivePlan:
    """What goes in the archive and under which names (UTF-8 names: `utf8`, else ZipUseUtf8); 404 if a
    resource does not exist."""
    content = await ctx.index.archive_content(list(dict.fromkeys(resources)))
    _require_none_missing(content.missing)
    # Naming and sorting take a while for 100,000 instances: off the loop.
    utf8 = bool(ctx.settings.ZipUseUtf8) if utf8 is None else utf8
    entries = await ctx.executors.run_cpu(_entries, content, media, utf8)
    return ArchivePlan(entries, media, extended, transcode, lossy_quality)


async def require_resources(ctx: ServerContext, resources: list[str]) -> None:
    """The 404 of plan_archive() without the plan (HEAD on an archive route)."""
    _require_none_missing(await ctx.index.missing_resources(list(dict.fromkeys(resources))))


def _require_none_missing(missing: list[str]) -> None:
    if missing:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {missing[0]}")


def _entries(content: ArchiveContent, media: bool, utf8: bool) -> list[ArchiveEntry]:
    """Orthanc walks patients, studies and series in the order of their IDs (std::map), the instances of a
    series by IndexInSeries (1.12.6)."""
    tree: dict[str, dict[str, dict[str, list[ArchivedInstance]]]] = {}
    for inst in content.instances:
        tree.setdefault(inst.patient_id, {}).setdefault(inst.study_id, {}).setdefault(inst.series_id, []).append(inst)
    entries: list[ArchiveEntry] = []
    root = UniqueNames()
    for patient_id in sorted(tree):
        patient_dir = root.take(folder_name(content.tags.get(patient_id, {}), PATIENT_PARTS, "Unknown Patient", utf8))
        studies = UniqueNames()
        for study_id in sorted(tree[patient_id]):
            study_dir = studies.take(folder_name(content.tags.get(study_id, {}), STUDY_PARTS, "Unknown Study", utf8))
            series_names = UniqueNames()
            for series_id in sorted(tree[patient_id][study_id]):
                tags = content.tags.get(series_id, {})
                series_dir = series_names.take(folder_name(tags, SERIES_PARTS, "Unknown Series", utf8))
                instances = sorted(tree[patient_id][study_id][series_id], key=lambda i: (i.index_in_series, i.instance_id))
                pattern = instance_format(tags.get(MODALITY, ""))
                files = UniqueNames()
                numbers = instance_numbers([i.index_in_series for i in instances])
                for inst, number in zip(instances, numbers):
                    if media:
                        name = f"{MEDIA_FOLDER}/IM{len(entries)}"
                    else:
                        name = f"{patient_dir}/{study_dir}/{series_dir}/{files.take(pattern % number)}"
                    entries.append(ArchiveEntry(name, (patient_id, study_id, series_id), inst))
    return entries


@dataclass
class _Packed:
    """One member read and deflated ahead of its turn (small members only)."""

    entry: ArchiveEntry
    deflated: Deflated | None  # None: the instance disappeared since the plan
    records: InstanceRecords | None = None


@dataclass
class _Streaming:
    """A large member going out chunk by chunk."""

    entry: ArchiveEntry
    source: BinaryIO
    deflater: StreamDeflater
    path: str


@dataclass(eq=False)
class ArchiveProducer:
    """Builds the ZIP of a plan; each next_chunk() does one bounded step. Members up to SMALL_MEMBER bytes are
    read and deflated LOOKAHEAD at a time in the pools (zlib releases the GIL: several cores work), then laid
    out in order; larger ones stream CHUNK by CHUNK. close() releases what is open."""

    ctx: ServerContext
    plan: ArchivePlan
    transcoder: Transcoder | None = None
    instances_done: int = 0
    archive_size: int = 0
    _writer: ZipStreamWriter = field(default_factory=ZipStreamWriter)
    _next: int = 0
    _ahead: deque[asyncio.Future[_Packed]] = field(default_factory=deque)
    _out: deque[bytes] = field(default_factory=deque)
    _streaming: _Streaming | None = None
    _dicomdir: DicomDirBuilder | None = None
    _finished: bool = False

    def __post_init__(self) -> None:
        if self.plan.media:
            self._dicomdir = DicomDirBuilder()

    @property
    def finished(self) -> bool:
        return self._finished

    def progress(self) -> float:
        return min(1.0, (self.instances_done + (1 if self._finished else 0)) / (len(self.plan.entries) + 1))

    async def next_chunk(self) -> bytes | None:
        """The next bytes of the archive (possibly empty), or None once it is complete."""
        if self._out:
            return self._emit(self._out.popleft())
        if self._finished:
            return None
        if self._streaming is not None:
            return self._emit(await self._stream_step(self._streaming))
        self._fill_lookahead()
        if self._ahead:
            packed = await self._ahead.popleft()
            self._lay_out(packed)
            return self._emit(self._out.popleft()) if self._out else b""
        if self._next < len(self.plan.entries):  # a large member: stream it
            entry = self.plan.entries[self._next]
            self._next += 1
            opened = await self.ctx.executors.run_io(self._open_large_sync, entry)
            if opened is None:
                return b""
            self._streaming = opened
            return self._emit(self._writer.begin_member(entry.name, entry.instance.size))
        out = await self.ctx.executors.run_cpu(self._finish_sync)
        self._finished = True
        return self._emit(out)

    def close(self) -> None:
        """Release the open file and drop the work started ahead (sync, cheap; safe to call twice)."""
        if self._streaming is not None:
            self._streaming.source.close()
            self._streaming = None
        while self._ahead:
            future = self._ahead.popleft()
            if future.done() and not future.cancelled():
                future.exception()  # consumed: a failed read-ahead of an abandoned archive is not an error
            else:
                future.cancel()
        self._out.clear()

    def _emit(self, data: bytes) -> bytes:
        self.archive_size += len(data)
        return data

    def _is_small(self, entry: ArchiveEntry) -> bool:
        inst = entry.instance
        return inst.size <= SMALL_MEMBER or inst.compressed or self.plan.transcode is not None

    def _fill_lookahead(self) -> None:
        while len(self._ahead) < LOOKAHEAD and self._next < len(self.plan.entries):
            entry = self.plan.entries[self._next]
            if not self._is_small(entry):
                break
            self._next += 1
            self._ahead.append(asyncio.ensure_future(self._pack(entry)))

    async def _pack(self, entry: ArchiveEntry) -> _Packed:
        data = await self.ctx.executors.run_io(self._read_sync, entry)
        if data is None:
            return _Packed(entry, None)
        return await self.ctx.executors.run_cpu(self._pack_sync, entry, data)

    def _lay_out(self, packed: _Packed) -> None:
        self.instances_done += 1
        if packed.deflated is None:
            return
        self._out.extend(self._writer.whole_member(packed.entry.name, packed.deflated))
        if self._dicomdir is not None and packed.records is not None:
            self._dicomdir.add(packed.entry.keys, packed.records)

    async def _stream_step(self, streaming: _Streaming) -> bytes:
        chunk: bytes = await self.ctx.executors.run_io(streaming.source.read, CHUNK)
        out: bytes = await self.ctx.executors.run_cpu(self._stream_sync, streaming, chunk)
        return out

    # --- sync parts (run in the io / cpu pools) -------------------------------------------------
    def _read_sync(self, entry: ArchiveEntry) -> bytes | None:
        inst = entry.instance
        try:
            return self.ctx.storage.read_sync(inst.uuid, inst.compressed)  # type: ignore[attr-defined,no-any-return]
        except FileNotFoundError:
            # As Orthanc: an instance deleted after the archive was planned is skipped.
            logger.warning("An instance was removed after the archive was planned: %s", inst.instance_id)
            return None

    def _pack_sync(self, entry: ArchiveEntry, data: bytes) -> _Packed:
        if self.plan.transcode and self.transcoder is not None:
            data = self._transcode(entry, data)
        records = record(data, entry.name.split("/"), self.plan.extended) if self._dicomdir is not None else None
        return _Packed(entry, deflate_member(data, COMPRESSION_LEVEL), records)

    def _open_large_sync(self, entry: ArchiveEntry) -> _Streaming | None:
        path = self.ctx.storage.local_path(entry.instance.uuid)
        try:
            if path is None:
                raise FileNotFoundError(entry.instance.uuid)
            return _Streaming(entry, open(path, "rb"), StreamDeflater(COMPRESSION_LEVEL), path)
        except FileNotFoundError:
            logger.warning("An instance was removed after the archive was planned: %s", entry.instance.instance_id)
            self.instances_done += 1
            return None

    def _stream_sync(self, streaming: _Streaming, chunk: bytes) -> bytes:
        out = streaming.deflater.feed(chunk) if chunk else b""
        if chunk and len(chunk) == CHUNK:
            return self._writer.member_data(out)
        out += streaming.deflater.finish()
        tail = self._writer.member_data(out)
        d = streaming.deflater
        descriptor = self._writer.end_member(d.crc, d.compressed_size, d.size)
        streaming.source.close()
        if self._dicomdir is not None:
            self._dicomdir.add(streaming.entry.keys,
                               record(streaming.path, streaming.entry.name.split("/"), self.plan.extended))
        self._streaming = None
        self.instances_done += 1
        return tail + descriptor

    def _transcode(self, entry: ArchiveEntry, data: bytes) -> bytes:
        assert self.transcoder is not None and self.plan.transcode is not None
        try:
            out = self.transcoder(data, self.plan.transcode, self.plan.lossy_quality)
        except Exception:  # noqa: BLE001 - as Orthanc: a file that cannot be transcoded is kept as is
            logger.info("Cannot transcode instance %s to %s", entry.instance.instance_id, self.plan.transcode,
                        exc_info=True)
            return data
        return out if out is not None else data

    def _finish_sync(self) -> bytes:
        parts = []
        if self._dicomdir is not None:
            parts.extend(self._writer.whole_member("DICOMDIR", deflate_member(self._dicomdir.encode(), COMPRESSION_LEVEL)))
        parts.append(self._writer.finish())
        return b"".join(parts)


def public_content(plan: ArchivePlan, producer: ArchiveProducer | None) -> dict[str, Any]:
    """Orthanc's job "Content" of an archive or media job."""
    size = producer.archive_size if producer is not None else 0
    out: dict[str, Any] = {
        "Description": "REST API",
        "InstancesCount": len(plan.entries),
        "UncompressedSize": str(plan.uncompressed_size),
        "UncompressedSizeMB": plan.uncompressed_size // (1024 * 1024),
        "ArchiveSize": str(size),
        "ArchiveSizeMB": size // (1024 * 1024),
    }
    if plan.transcode:
        out["Transcode"] = plan.transcode
    return out


async def write_archive_file(producer: ArchiveProducer, path: str) -> None:
    """Produce the whole archive into a file (SynchronousZipStream false, asynchronous jobs)."""
    ex = producer.ctx.executors
    f = await ex.run_io(open, path, "wb")
    try:
        while (chunk := await producer.next_chunk()) is not None:
            if chunk:
                await ex.run_io(f.write, chunk)
    finally:
        producer.close()
        await ex.run_io(f.close)


def archives_dir(ctx: ServerContext) -> str:
    """Where archives built before sending (or kept for /jobs/{id}/archive) live: the storage's spool folder,
    on the same disk and cleaned at start-up."""
    return ctx.storage.incoming_dir()

