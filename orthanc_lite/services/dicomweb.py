"""The core side of the DICOMweb server: locate resources by UIDs, list the instances to send, WADO-RS metadata
(with its cache) and the STOW-RS store of one part. Never imports aiohttp (dicomweb/ does the HTTP side).

Fast metadata: the DICOM JSON of a series is computed once (one file read per instance, up to the pixel data,
in the cpu pool), then kept gzipped as the series attachment 4301 (as the DICOMweb plugin does) and in a
bounded in-memory LRU. Both are keyed by a digest of the series' instances and their file UUIDs, so a new,
deleted or overwritten instance makes the cache stale without any hook; StableSeries refreshes it in the
background. A warm request costs one SQL read and a string replace: the base URL is a placeholder in the cache.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import logging
import uuid as uuidlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import orjson

from ..dicom import dicomweb_encode as dicomweb_json
from ..dicom.matching import IndexQuery, dicom_constraint
from ..dicom.values import DicomReadError, read_dataset, tag_string
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, ChangeType, MetadataType, Origin, ResourceLevel, StoreStatus
from .context import ServerContext, now_iso
from .find import FindRequest, find
from .store import StoredInstance, announce, store_parsed_blocking
from .tags import missing_file

logger = logging.getLogger(__name__)

SERIES_METADATA_ATTACHMENT: Final = 4301       # the DICOMweb plugin's attachment number
WADO_BASE_PLACEHOLDER: Final = "$WADO_BASE_PLACEHOLDER$"
_CACHE_VERSION: Final = b"ol1;"
DEFER_BYTES: Final = 4096
_BATCH: Final = 16                              # instances converted per cpu-pool hop
_MEMORY_CACHE_BYTES: Final = 128 << 20
_STUDY_UID: Final = 0x0020000D
_SERIES_UID: Final = 0x0020000E
_SOP_UID: Final = 0x00080018
_SOP_CLASS_UID: Final = 0x00080016
_LEVEL_NAMES: Final = {ResourceLevel.STUDY: "Study", ResourceLevel.SERIES: "Series", ResourceLevel.INSTANCE: "Instance"}


@dataclass(frozen=True, slots=True)
class InstanceRef:
    """One stored instance, as WADO-RS needs it."""

    public_id: str
    sop_uid: str
    attachment: AttachmentInfo
    transfer_syntax: str | None
    pixel_data_offset: int | None
    pixel_data_vr: str | None


# --- locating resources ---------------------------------------------------------------------------------

async def locate(ctx: ServerContext, level: ResourceLevel, study: str, series: str = "", instance: str = "") -> str:
    """The public ID of the resource that these UIDs name (LocateResource); 404 when none, or several, match."""
    constraints = []
    for tag, uid in ((_STUDY_UID, study), (_SERIES_UID, series), (_SOP_UID, instance)):
        if uid:
            c = dicom_constraint(tag, uid, vr="UI")
            if c is not None:
                constraints.append(c)
    result = await find(ctx, FindRequest(IndexQuery(level, tuple(constraints), limit=2)))
    name = _LEVEL_NAMES[level]
    if not result.answers:
        raise OrthancError(ErrorCode.InexistentItem,
                           f"Accessing an inexistent {name} with WADO-RS: {study}/{series}/{instance}")
    if len(result.answers) > 1:
        raise OrthancError(ErrorCode.InexistentItem, f"Multiple {name} found for WADO-RS: {study}/{series}/{instance}")
    return result.answers[0].public_id


async def instances_of(ctx: ServerContext, level: ResourceLevel, public_id: str) -> list[InstanceRef]:
    """Every instance below (or equal to) a resource, with its file, in one read per batch of the index."""
    query = IndexQuery(ResourceLevel.INSTANCE, parents=((level, public_id),))
    result = await find(ctx, FindRequest(query, expand=True))
    out: list[InstanceRef] = []
    for answer in result.answers:
        info = answer.resource
        if info is None or info.dicom_attachment is None:
            continue
        meta = info.metadata
        offset = meta.get(MetadataType.PixelDataOffset)
        out.append(InstanceRef(
            answer.public_id, info.main_tags.get("0008,0018", ""), info.dicom_attachment,
            meta.get(MetadataType.TransferSyntax), int(offset) if offset and offset.isdigit() else None,
            meta.get(MetadataType.PixelDataVR)))
    return out


def read_instance_file(ctx: ServerContext, ref: InstanceRef) -> bytes:
    """Blocking (a worker thread): the whole DICOM file of an instance."""
    try:
        return ctx.storage.read_sync(ref.attachment.uuid, compressed=ref.attachment.compression != 1)
    except FileNotFoundError:
        raise missing_file(ref.attachment.uuid) from None


def _whole_source(ctx: ServerContext, ref: InstanceRef) -> str | bytes:
    """Blocking: what to parse for the metadata: the file's path when stored uncompressed (big values are then
    deferred, never read), else its decompressed bytes."""
    att = ref.attachment
    if att.compression == 1 and hasattr(ctx.storage, "path"):
        return str(ctx.storage.path(att.uuid))
    return read_instance_file(ctx, ref)


# --- metadata -------------------------------------------------------------------------------------------

def bulk_root(base: str, study_uid: str, series_uid: str, sop_uid: str) -> str:
    return f"{base}studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/bulk"


def _instance_json_sync(ctx: ServerContext, refs: list[InstanceRef], study_uid: str, series_uid: str,
                        base: str, binary_mode: str) -> list[bytes]:
    """Blocking (cpu pool): the DICOM JSON of each instance, serialized. An unreadable file is skipped (logged),
    as the plugin skips an instance it cannot load."""
    out: list[bytes] = []
    encoding = ctx.default_encoding
    for ref in refs:
        try:
            # The whole dataset: attributes after the pixel data are answered too, as Orthanc does; values
            # over DEFER_BYTES (the pixel data...) stay on disk unless InlineBinary asks for them.
            ds = read_dataset(_whole_source(ctx, ref), encoding, defer_size=DEFER_BYTES)
            root = bulk_root(base, study_uid, series_uid, ref.sop_uid)
            node = dicomweb_json.dataset_to_dicomweb(ds, root, binary_mode)
        except (OrthancError, OSError, DicomReadError, ValueError) as exc:
            logger.warning("DICOMweb: cannot read instance %s for its metadata: %s", ref.public_id, exc)
            continue
        out.append(orjson.dumps(node))
    return out


async def instances_json(ctx: ServerContext, refs: list[InstanceRef], study_uid: str, series_uid: str,
                         base: str) -> list[bytes]:
    """Compute the DICOM JSON of instances in batches through the cpu pool."""
    mode = str(ctx.settings.DicomWeb.get("OtherBinaryMode", dicomweb_json.BULK_DATA_URI))
    out: list[bytes] = []
    for start in range(0, len(refs), _BATCH):
        out.extend(await ctx.executors.run_cpu(_instance_json_sync, ctx, refs[start:start + _BATCH],
                                               study_uid, series_uid, base, mode))
    return out


class MetadataCache:
    """Series metadata (instances' JSON joined with ",", base URL as a placeholder), LRU bounded by bytes."""

    def __init__(self, max_bytes: int = _MEMORY_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[bytes, bytes]] = OrderedDict()
        self._bytes = 0
        self.locks: dict[str, asyncio.Lock] = {}
        self.computed = 0   # cold computations (tests and benchmarks read it)

    def get(self, series_id: str, digest: bytes) -> bytes | None:
        entry = self._entries.get(series_id)
        if entry is None or entry[0] != digest:
            return None
        self._entries.move_to_end(series_id)
        return entry[1]

    def put(self, series_id: str, digest: bytes, content: bytes) -> None:
        old = self._entries.pop(series_id, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(content) > self.max_bytes // 4:
            return
        self._entries[series_id] = (digest, content)
        self._bytes += len(content)
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def lock(self, series_id: str) -> asyncio.Lock:
        found = self.locks.get(series_id)
        if found is None:
            found = self.locks[series_id] = asyncio.Lock()
        return found


def metadata_cache(ctx: ServerContext) -> MetadataCache:
    cache = ctx.extra.get("dicomweb.metadata_cache")
    if not isinstance(cache, MetadataCache):
        cache = ctx.extra["dicomweb.metadata_cache"] = MetadataCache()
    return cache


def instances_digest(refs: list[InstanceRef]) -> bytes:
    """Changes when an instance is added, removed or replaced (its file UUID changes)."""
    h = hashlib.md5()
    for ref in sorted(refs, key=lambda r: r.public_id):
        h.update(ref.public_id.encode())
        h.update(ref.attachment.uuid.encode())
    return h.hexdigest().encode()


def cache_enabled(ctx: ServerContext) -> bool:
    return bool(ctx.settings.DicomWeb.get("EnableMetadataCache", True))


async def series_metadata(ctx: ServerContext, series_id: str, study_uid: str, series_uid: str) -> bytes:
    """The instances' DICOM JSON of a series, joined with "," (the base URL is WADO_BASE_PLACEHOLDER)."""
    refs = await instances_of(ctx, ResourceLevel.SERIES, series_id)
    refs.sort(key=lambda r: r.public_id)  # the plugin walks a std::set of the instances' IDs
    if not cache_enabled(ctx):
        return b",".join(await instances_json(ctx, refs, study_uid, series_uid, WADO_BASE_PLACEHOLDER))
    cache = metadata_cache(ctx)
    digest = instances_digest(refs)
    hit = cache.get(series_id, digest)
    if hit is not None:
        return hit
    async with cache.lock(series_id):
        hit = cache.get(series_id, digest)
        if hit is None:
            hit = await _from_attachment(ctx, series_id, digest)
        if hit is None:
            hit = b",".join(await instances_json(ctx, refs, study_uid, series_uid, WADO_BASE_PLACEHOLDER))
            cache.computed += 1
            await _save_attachment(ctx, series_id, digest, hit)
        cache.put(series_id, digest, hit)
    cache.locks.pop(series_id, None)
    return hit


async def _from_attachment(ctx: ServerContext, series_id: str, digest: bytes) -> bytes | None:
    attachments = await ctx.index.resource_attachments(series_id, ResourceLevel.SERIES)
    att = (attachments or {}).get(SERIES_METADATA_ATTACHMENT)
    if att is None:
        return None
    try:
        raw = await ctx.storage.read(att.uuid, att.compression != 1)
    except OSError:
        return None
    prefix = _CACHE_VERSION + digest + b";"
    if not raw.startswith(prefix):
        return None
    try:
        return await ctx.executors.run_cpu(gzip.decompress, raw[len(prefix):])
    except (OSError, EOFError):
        return None


async def _save_attachment(ctx: ServerContext, series_id: str, digest: bytes, content: bytes) -> None:
    """Keep the metadata as the series attachment 4301 (skipped in ReadOnly mode; a failure is only logged)."""
    if ctx.settings.ReadOnly:
        return
    payload = _CACHE_VERSION + digest + b";" + await ctx.executors.run_cpu(gzip.compress, content, 1)
    file_uuid = str(uuidlib.uuid4())
    try:
        stored = await ctx.executors.run_io(ctx.storage.create_from_bytes_sync, payload, file_uuid, False)
        att = AttachmentInfo(stored.uuid, SERIES_METADATA_ATTACHMENT, stored.uncompressed_size,
                             stored.compressed_size, stored.uncompressed_md5, stored.compressed_md5, 1)
        date = now_iso()
        try:
            _, removed, change = await ctx.index.set_attachment(series_id, ResourceLevel.SERIES, att, None, date)
        except BaseException:
            await ctx.storage.remove(file_uuid)
            raise
        for old_uuid, _compressed in removed:
            await ctx.storage.remove(old_uuid)
        ctx.publish([change], date)
    except OrthancError as exc:  # the series went away meanwhile
        logger.info("DICOMweb: metadata cache of series %s not saved: %s", series_id, exc.details)


async def refresh_series_cache(ctx: ServerContext, series_id: str) -> None:
    """StableSeries: precompute the metadata of a series (as the plugin's CacheSeriesMetadata)."""
    info = await ctx.index.expand_one(series_id, ResourceLevel.SERIES)
    if info is None or info.parent_public_id is None:
        return
    study = await ctx.index.expand_one(info.parent_public_id, ResourceLevel.STUDY)
    if study is None:
        return
    await series_metadata(ctx, series_id, study.main_tags.get("0020,000d", ""), info.main_tags.get("0020,000e", ""))


async def follow_stable_series(ctx: ServerContext) -> None:
    """Background task: refresh the metadata cache of each series that becomes stable."""
    queue = ctx.bus.subscribe()
    try:
        while True:
            change = await queue.get()
            if change.change_type is ChangeType.StableSeries and cache_enabled(ctx):
                try:
                    await refresh_series_cache(ctx, change.public_id)
                except OrthancError as exc:
                    logger.info("DICOMweb: cannot cache the metadata of series %s: %s", change.public_id, exc.details)
    finally:
        ctx.bus.unsubscribe(queue)


async def main_tags_metadata(ctx: ServerContext, level: ResourceLevel, public_id: str,
                             extrapolated: list[int]) -> list[bytes]:
    """MainDicomTags / Extrapolate modes: each instance's main tags with its series', study's and patient's."""
    from ..dicom.matching import tag_vr

    query = IndexQuery(ResourceLevel.INSTANCE, parents=((level, public_id),))
    result = await find(ctx, FindRequest(query, expand=True))
    ancestors: dict[str, dict[str, str]] = {}
    extra: dict[str, dict[int, str]] = {}
    out: list[bytes] = []
    for answer in sorted(result.answers, key=lambda a: a.public_id):
        info = answer.resource
        if info is None or info.parent_public_id is None:
            continue
        series_id = info.parent_public_id
        if series_id not in ancestors:
            series = await ctx.index.expand_one(series_id, ResourceLevel.SERIES)
            study = await ctx.index.expand_one(series.parent_public_id, ResourceLevel.STUDY) if series and series.parent_public_id else None
            ancestors[series_id] = {**(study.main_tags if study else {}), **(series.main_tags if series else {})}
            extra[series_id] = await _extrapolate(ctx, series_id, extrapolated) if extrapolated else {}
        merged = {**ancestors[series_id], **info.main_tags}
        values: dict[int, tuple[str, str | None]] = {}
        for k, v in merged.items():
            tag = int(k.replace(",", ""), 16)
            values[tag] = (tag_vr(tag), v)
        for tag, v in extra[series_id].items():
            values[tag] = (tag_vr(tag), v)
        node = dicomweb_json.values_to_dicomweb(values, "")
        out.append(orjson.dumps(node))
    return out


async def _extrapolate(ctx: ServerContext, series_id: str, tags: list[int]) -> dict[int, str]:
    """The most frequent value of each tag among (up to) three instances of the series."""
    from .tags import load

    refs = sorted(await instances_of(ctx, ResourceLevel.SERIES, series_id), key=lambda r: r.public_id)[:3]
    counters: dict[int, dict[str, int]] = {t: {} for t in tags}
    for ref in refs:
        loaded = await load(ctx, ref.attachment, keep=False)
        for tag in tags:
            value = await ctx.executors.run_cpu(_tag_text, loaded.ds, tag)
            if value is not None:
                counters[tag][value] = counters[tag].get(value, 0) + 1
    return {tag: max(c.items(), key=lambda kv: kv[1])[0] for tag, c in counters.items() if c}


def _tag_text(ds: Any, tag: int) -> str | None:
    from ..dicom.values import tag_string

    return tag_string(ds, tag)


# --- STOW-RS --------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class StowOutcome:
    """One part of a STOW-RS request. `uids` = (study, series, sop instance, sop class); `failure` = the DICOM
    FailureReason (None when stored); `bad_syntax` = the part is not DICOM or lacks a UID."""

    uids: tuple[str, str, str, str] | None
    failure: int | None = None
    bad_syntax: bool = False
    conflict: bool = False


def _stow_part_sync(ctx: ServerContext, source: bytes | str, expected_study: str,
                    md5: str | None) -> tuple[StowOutcome, StoredInstance | None]:
    """Blocking (io pool): parse once (the UIDs and everything the index needs), check the study, store.
    `source` is bytes or a spooled file path, which this consumes."""
    from ..dicom.parse import UnreadableDicom, parse_instance
    from ..storage.base import unlink_quietly

    path = source if isinstance(source, str) else None
    try:
        with ctx.executors.cpu_turn:
            parsed = parse_instance(source, ctx.default_encoding)
    except UnreadableDicom:
        if path:
            unlink_quietly(path)
        return StowOutcome(None, bad_syntax=True), None
    except OrthancError:  # readable, but a UID is missing: report it when the SOP UIDs are there
        uids = _uids_of(source, ctx.default_encoding)
        if path:
            unlink_quietly(path)
        return StowOutcome(uids if uids and uids[2] and uids[3] else None, 0xC000, bad_syntax=True), None
    uids = (parsed.study_uid, parsed.series_uid, parsed.sop_uid, parsed.sop_class_uid or "")
    if not all(uids):
        if path:
            unlink_quietly(path)
        return StowOutcome(uids if uids[2] and uids[3] else None, 0xC000, bad_syntax=True), None
    if expected_study and parsed.study_uid != expected_study:
        if path:
            unlink_quietly(path)
        return StowOutcome(uids, 0x0110, conflict=True), None
    try:
        stored = store_parsed_blocking(ctx, source, parsed, Origin("Plugins"), md5)
    except OrthancError as exc:
        logger.error("DICOMweb: STOW-RS could not store instance %s: %s", parsed.sop_uid,
                     exc.details or exc.code.description)
        return StowOutcome(uids, 0xA700 if exc.code is ErrorCode.FullStorage else 0x0110), None
    return StowOutcome(uids), stored


def _uids_of(source: bytes | str, encoding: str) -> tuple[str, str, str, str] | None:
    try:
        ds = read_dataset(source, encoding, stop_before_pixels=True)
    except (DicomReadError, OSError, ValueError):
        return None
    study, series, sop, sop_class = ((tag_string(ds, t) or "").strip()
                                     for t in (_STUDY_UID, _SERIES_UID, _SOP_UID, _SOP_CLASS_UID))
    return study, series, sop, sop_class


async def stow_part(ctx: ServerContext, source: bytes | str, expected_study: str,
                    md5: str | None = None) -> StowOutcome:
    """Store one part of a STOW-RS body (bytes, or a spooled file that this consumes)."""
    outcome, stored = await ctx.executors.run_io(_stow_part_sync, ctx, source, expected_study, md5)
    if stored is not None:
        result = announce(ctx, stored)
        if result.status not in (StoreStatus.Success, StoreStatus.AlreadyStored):
            return StowOutcome(outcome.uids, 0x0110)
    return outcome
