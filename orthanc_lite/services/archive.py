"""ZIP archives and DICOMDIR media of stored resources (Orthanc's ArchiveJob), produced chunk by chunk.

plan_archive() reads the index once; ArchiveProducer.next_chunk() then does one bounded unit of work per
call (read up to CHUNK bytes of one file in the io pool, deflate them in the cpu pool) and returns the ZIP
bytes made so far. Memory stays flat whatever the archive size; the caller decides where the bytes go (an
HTTP stream that applies backpressure, or a temporary file for asynchronous jobs), and stops the work by
no longer asking (a client that disconnects).
"""

from __future__ import annotations

import logging
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Final

from ..dicom.dicomdir import DicomDirBuilder, record
from ..errors import ErrorCode, OrthancError
from ..index.archive import ArchivedInstance
from .archive_names import (PATIENT_PARTS, SERIES_PARTS, STUDY_PARTS, MODALITY, UniqueNames, folder_name,
                            instance_format, instance_numbers)
from .context import ServerContext

logger = logging.getLogger(__name__)

CHUNK: Final = 4 * 1024 * 1024  # bytes read and deflated per step
COMPRESSION_LEVEL: Final = 6     # zlib's default, as Orthanc's ZipWriter
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
                       transcode: str | None = None, lossy_quality: int | None = None) -> ArchivePlan:
    """What goes in the archive and under which names; 404 if a resource does not exist."""
    content = await ctx.index.archive_content(list(dict.fromkeys(resources)))
    if content.missing:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {content.missing[0]}")
    utf8 = bool(ctx.settings.ZipUseUtf8)
    # Orthanc walks patients, studies and series in the order of their IDs (std::map), instances by
    # IndexInSeries (1.12.6).
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
    return ArchivePlan(entries, media, extended, transcode, lossy_quality)


class _Sink:
    """Where zipfile writes: kept in memory until the caller takes it (unseekable, so zipfile streams with
    data descriptors and never goes back)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.total = 0

    def write(self, data: bytes) -> int:
        self._parts.append(bytes(data))
        self.total += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


@dataclass
class _Current:
    entry: ArchiveEntry
    source: BinaryIO | None = None     # the stored file, read CHUNK by CHUNK
    data: bytes | None = None          # or its whole content (compressed storage, transcoding)
    member: Any = None                 # zipfile's writer of this entry
    header_source: bytes | str | None = None  # what the DICOMDIR record is read from


@dataclass(eq=False)
class ArchiveProducer:
    """Builds the ZIP of a plan, one bounded step per next_chunk(). close() releases open files."""

    ctx: ServerContext
    plan: ArchivePlan
    transcoder: Transcoder | None = None
    instances_done: int = 0
    archive_size: int = 0
    _sink: _Sink = field(default_factory=_Sink)
    _zip: zipfile.ZipFile | None = None
    _next: int = 0
    _current: _Current | None = None
    _dicomdir: DicomDirBuilder | None = None
    _finished: bool = False

    def __post_init__(self) -> None:
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_DEFLATED, allowZip64=True,  # type: ignore[arg-type]
                                    compresslevel=COMPRESSION_LEVEL)
        if self.plan.media:
            self._dicomdir = DicomDirBuilder()

    @property
    def finished(self) -> bool:
        return self._finished

    def progress(self) -> float:
        total = len(self.plan.entries) + 1
        return min(1.0, (self.instances_done + (1 if self._finished else 0)) / total)

    async def next_chunk(self) -> bytes | None:
        """The next bytes of the archive (possibly empty), or None once it is complete."""
        if self._finished:
            return None
        ex = self.ctx.executors
        if self._current is None:
            if self._next >= len(self.plan.entries):
                out = await ex.run_cpu(self._finish_sync)
                self.archive_size += len(out)
                return out
            entry = self.plan.entries[self._next]
            self._next += 1
            self._current = await ex.run_io(self._open_sync, entry)
            if self._current is None:
                return b""
        current = self._current
        if current.data is None and current.source is not None:
            chunk: bytes | None = await ex.run_io(current.source.read, CHUNK)
        else:
            chunk = None
        out = await ex.run_cpu(self._deflate_sync, current, chunk)
        self.archive_size += len(out)
        return out

    def close(self) -> None:
        """Release the open file (sync and cheap; safe to call twice)."""
        if self._current is not None and self._current.source is not None:
            self._current.source.close()
        self._current = None

    # --- sync parts (run in the io / cpu pools) -------------------------------------------------
    def _open_sync(self, entry: ArchiveEntry) -> _Current | None:
        inst = entry.instance
        storage = self.ctx.storage
        try:
            if inst.compressed or self.plan.transcode:
                data = storage.read_sync(inst.uuid, inst.compressed)  # type: ignore[attr-defined]
                return _Current(entry, data=data)
            path = storage.local_path(inst.uuid)
            if path is None:
                return _Current(entry, data=storage.read_sync(inst.uuid))  # type: ignore[attr-defined]
            return _Current(entry, source=open(path, "rb"), header_source=path)
        except FileNotFoundError:
            # As Orthanc: an instance deleted after the archive was planned is skipped.
            logger.warning("An instance was removed after the archive was planned: %s", inst.instance_id)
            self.instances_done += 1
            return None

    def _start_member(self, current: _Current, size: int) -> None:
        assert self._zip is not None
        info = zipfile.ZipInfo(current.entry.name, time.localtime()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = size  # lets zipfile choose ZIP64 headers up front for files over 4 GB
        current.member = self._zip.open(info, "w")

    def _deflate_sync(self, current: _Current, chunk: bytes | None) -> bytes:
        if current.data is not None:  # whole file in memory: transcode if asked, then write it at once
            data = current.data
            if self.plan.transcode and self.transcoder is not None:
                data = self._transcode(current, data)
            self._start_member(current, len(data))
            current.member.write(data)
            current.header_source = data
            self._end_member(current)
        else:
            if current.member is None:
                self._start_member(current, current.entry.instance.size)
            if chunk:
                current.member.write(chunk)
            if not chunk or len(chunk) < CHUNK:
                self._end_member(current)
        return self._sink.take()

    def _transcode(self, current: _Current, data: bytes) -> bytes:
        assert self.transcoder is not None and self.plan.transcode is not None
        try:
            out = self.transcoder(data, self.plan.transcode, self.plan.lossy_quality)
        except Exception:  # noqa: BLE001 - as Orthanc: a file that cannot be transcoded is kept as is
            logger.info("Cannot transcode instance %s to %s", current.entry.instance.instance_id,
                        self.plan.transcode, exc_info=True)
            return data
        return out if out is not None else data

    def _end_member(self, current: _Current) -> None:
        current.member.close()
        if current.source is not None:
            current.source.close()
        if self._dicomdir is not None and current.header_source is not None:
            file_id = current.entry.name.split("/")
            self._dicomdir.add(current.entry.keys, record(current.header_source, file_id, self.plan.extended))
        self._current = None
        self.instances_done += 1

    def _finish_sync(self) -> bytes:
        assert self._zip is not None
        if self._dicomdir is not None:
            info = zipfile.ZipInfo("DICOMDIR", time.localtime()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            self._zip.writestr(info, self._dicomdir.encode())
        self._zip.close()
        self._finished = True
        return self._sink.take()


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

