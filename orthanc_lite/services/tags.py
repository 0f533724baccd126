"""The DICOM content of stored instances for the tags routes: /tags, /header, /content, /pdf, /frames,
shared-tags, module and instances-tags (~ OrthancRestResources.cpp and ParsedDicomFile.cpp).

Datasets are read off-loop: the attachment through the storage area in the io pool, the parse and the
JSON conversion in the cpu pool. Only the part before the pixel data is read unless a route needs more.
A small LRU cache (bounded by entries and bytes) keeps recently parsed datasets. Level-wide routes read
their instances in bounded batches. Never imports aiohttp.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ..dicom.content import PIXEL_DATA, list_content
from ..dicom.dicom_json import (
    UserDictionary,
    dataset_to_json,
    parse_tag,
    simplify_json,
    tag_key,
)
from ..dicom.values import (
    DicomReadError,
    element_vr,
    meta_tags,
    read_dataset,
    tag_string,
)
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, ResourceLevel
from .context import ServerContext

logger = logging.getLogger(__name__)

T = TypeVar("T")

PREFIX_BYTES: Final = 1 << 20       # first read: enough for the header of almost any file
BATCH_SIZE: Final = 8               # instances read at once by the level-wide routes
CACHE_ENTRIES: Final = 32
CACHE_BYTES: Final = 64 << 20       # total size of the files behind the cached datasets
_CACHE_KEY: Final = "tags.dataset_cache"
_DICTIONARY_KEY: Final = "tags.user_dictionary"
_UNDEFINED_LENGTH: Final = 0xFFFFFFFF
_PIXEL_TAG_BYTES: Final = (b"\xe0\x7f\x10\x00", b"\x7f\xe0\x00\x10")  # (7fe0,0010) little / big endian
_PDF_SOP_CLASS: Final = "1.2.840.10008.5.1.4.1.1.104.1"
_PARSE_ERRORS: Final = (DicomReadError, OSError, EOFError, ValueError, KeyError, IndexError, TypeError,
                        AttributeError, NotImplementedError, OverflowError, struct.error)
_INDEX: Final = re.compile(r"^[+-]?[0-9]+$")  # what boost::lexical_cast<size_t> accepts

# DicomTag::AddTagsForModule (Orthanc's DicomTag.cpp): the tags of each module.
MODULE_TAGS: Final[dict[str, frozenset[int]]] = {
    "patient": frozenset({
        0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x00081120, 0x00100032, 0x00101000, 0x00101002,
        0x00101001, 0x00102160, 0x00104000, 0x00102201, 0x00102202, 0x00102292, 0x00102293, 0x00102294,
        0x00102297, 0x00102298, 0x00102299, 0x00120062, 0x00120063, 0x00120064, 0x00100021, 0x00100024,
    }),
    "study": frozenset({
        0x0020000D, 0x00080020, 0x00080030, 0x00080090, 0x00080096, 0x00200010, 0x00080050, 0x00080051,
        0x00081030, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00321034, 0x00081110, 0x00081032,
        0x00401012,
    }),
    "series": frozenset({
        0x00080060, 0x0020000E, 0x00200011, 0x00200060, 0x00080021, 0x00080031, 0x00081050, 0x00081052,
        0x00181030, 0x0008103E, 0x0008103F, 0x00081070, 0x00081072, 0x00081111, 0x00081250, 0x00180015,
        0x00185100, 0x00280108, 0x00290109, 0x00400275, 0x00102210, 0x00400253, 0x00400244, 0x00400245,
        0x00400254, 0x00400260, 0x00400280,
    }),
    "instance": frozenset({
        0x00080016, 0x00080018, 0x00080005, 0x00080012, 0x00080013, 0x00080014, 0x0008001A, 0x0008001B,
        0x00080110, 0x00080201, 0x0018A001, 0x00200013, 0x01000410, 0x01000420, 0x01000424, 0x01000426,
        0x04000500, 0x04000561, 0x0040A390, 0x00280303, 0x4FFE0001, 0xFFFAFFFA,
    }),
}


# ------------------------------------------------------------------------------------------------ datasets

@dataclass(slots=True)
class LoadedDataset:
    """A parsed instance. `whole`: read to the end of the file; else it stops before the pixel data
    (`has_pixel_data` then says whether the file has some). The lock serializes the cpu-pool work on
    one cached dataset, since pydicom converts raw elements in place."""

    ds: Dataset
    whole: bool
    has_pixel_data: bool
    size: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Values derived from `ds` once (e.g. its pixel layout), under the lock; they go when the dataset does
    memo: dict[str, Any] = field(default_factory=dict)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        with self.lock:
            return fn(self, *args)


class DatasetCache:
    """LRU of parsed datasets keyed by (attachment uuid, DefaultEncoding, whole). Used from the loop and from
    worker threads (the image routes look up, read and decode in one hop), hence the lock."""

    def __init__(self, max_entries: int = CACHE_ENTRIES, max_bytes: int = CACHE_BYTES) -> None:
        self._lock = threading.Lock()
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str, bool], LoadedDataset] = OrderedDict()
        self._bytes = 0

    def get(self, uuid: str, encoding: str, whole: bool) -> LoadedDataset | None:
        with self._lock:
            return self._get(uuid, encoding, whole)

    def _get(self, uuid: str, encoding: str, whole: bool) -> LoadedDataset | None:
        # A whole dataset also answers what a prefix would
        for key in ((uuid, encoding, True),) if whole else ((uuid, encoding, False), (uuid, encoding, True)):
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        return None

    def put(self, uuid: str, encoding: str, loaded: LoadedDataset) -> None:
        if loaded.size > self.max_bytes // 4:
            return  # one big file must not flush everything else
        with self._lock:
            self._put(uuid, encoding, loaded)

    def _put(self, uuid: str, encoding: str, loaded: LoadedDataset) -> None:
        key = (uuid, encoding, loaded.whole)
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old.size
        self._entries[key] = loaded
        self._bytes += loaded.size
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._bytes


def dataset_cache(ctx: ServerContext) -> DatasetCache:
    cache = ctx.extra.get(_CACHE_KEY)
    if not isinstance(cache, DatasetCache):
        cache = ctx.extra.setdefault(_CACHE_KEY, DatasetCache())  # atomic: worker threads may race here
    return cache


async def instance_attachment(ctx: ServerContext, public_id: str) -> AttachmentInfo:
    """The DICOM attachment of an instance: 404 (UnknownResource) when the instance is unknown."""
    found = await ctx.index.find_internal(public_id, ResourceLevel.INSTANCE)
    if found is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    return await _dicom_attachment(ctx, found[0], public_id)


async def _dicom_attachment(ctx: ServerContext, internal: int, public_id: str) -> AttachmentInfo:
    attachment = (await ctx.index.attachments_of(internal)).get(1)
    if attachment is None:
        raise OrthancError(ErrorCode.InexistentFile, f"No DICOM file for instance {public_id}")
    return attachment


def missing_file(uuid: str) -> OrthancError:
    """InexistentFile (404) for an attachment whose file is not in the storage area."""
    return OrthancError(ErrorCode.InexistentFile, f"Missing file in the storage area: {uuid}")


async def load(ctx: ServerContext, attachment: AttachmentInfo, whole: bool = False,
               keep: bool = True) -> LoadedDataset:
    """The parsed dataset behind a DICOM attachment (io pool reads, cpu pool parses). The cache is
    always looked up; `keep=False` (level-wide reads) does not fill it. A file missing from the
    storage area is InexistentFile (404)."""
    encoding = ctx.default_encoding
    cache = dataset_cache(ctx)
    hit = cache.get(attachment.uuid, encoding, whole)
    if hit is not None:
        return hit
    compressed = attachment.compression != 1
    loaded: LoadedDataset | None = None
    try:
        if not whole and attachment.uncompressed_size > PREFIX_BYTES:
            prefix = await ctx.storage.read_range(attachment.uuid, 0, PREFIX_BYTES, compressed)
            loaded = await ctx.executors.run_cpu(parse_prefix, prefix, encoding, False)
        if loaded is None:
            data = await ctx.storage.read(attachment.uuid, compressed)
            loaded = await ctx.executors.run_cpu(parse_prefix, data, encoding, True) if not whole else None
            if loaded is None:
                loaded = await ctx.executors.run_cpu(parse_whole, data, encoding)
    except FileNotFoundError:
        raise missing_file(attachment.uuid) from None
    if keep:
        cache.put(attachment.uuid, encoding, loaded)
    return loaded


def load_whole_sync(ctx: ServerContext, attachment: AttachmentInfo) -> LoadedDataset:
    """`load(whole=True)` from a worker thread: cache lookup, file read and parse in the caller's hop."""
    encoding = ctx.default_encoding
    cache = dataset_cache(ctx)
    hit = cache.get(attachment.uuid, encoding, True)
    if hit is not None:
        return hit
    try:
        data = ctx.storage.read_sync(attachment.uuid, attachment.compression != 1)
    except FileNotFoundError:
        raise missing_file(attachment.uuid) from None
    loaded = parse_whole(data, encoding)
    cache.put(attachment.uuid, encoding, loaded)
    return loaded


def parse_prefix(data: bytes, encoding: str, complete: bool) -> LoadedDataset | None:
    """Parse up to the pixel data. None when `data` (the first bytes of a file, or all of it when
    `complete`) is not enough to know the header for sure: the caller then reads the whole file."""
    fp = io.BytesIO(data)
    try:
        ds = read_dataset(fp, encoding, stop_before_pixels=True)
    except _PARSE_ERRORS:  # on a cut prefix pydicom fails in many ways
        if complete:
            raise OrthancError(ErrorCode.BadFileFormat, "Cannot parse the stored DICOM file") from None
        return None
    position = fp.tell()
    next_tag = data[position:position + 4]
    if next_tag in _PIXEL_TAG_BYTES and len(data) - position >= 8:
        return LoadedDataset(ds, False, True, position)
    if complete and position >= len(data):
        return LoadedDataset(ds, False, False, len(data))
    return None  # stopped on FloatPixelData & co, or the prefix was cut inside the header


def parse_whole(data: bytes, encoding: str) -> LoadedDataset:
    try:
        ds = read_dataset(data, encoding)
    except _PARSE_ERRORS:
        raise OrthancError(ErrorCode.BadFileFormat, "Cannot parse the stored DICOM file") from None
    return LoadedDataset(ds, True, PIXEL_DATA in ds, len(data))


async def with_dataset(ctx: ServerContext, public_id: str, fn: Callable[..., T], *args: Any,
                       whole: bool = False) -> T:
    """Run `fn(loaded, *args)` in the cpu pool on the dataset of one instance."""
    return await with_attachment(ctx, await instance_attachment(ctx, public_id), fn, *args, whole=whole)


async def with_attachment(ctx: ServerContext, attachment: AttachmentInfo, fn: Callable[..., T], *args: Any,
                          whole: bool = False) -> T:
    """Run `fn(loaded, *args)` in the cpu pool on the dataset behind a DICOM attachment."""
    loaded = await load(ctx, attachment, whole)
    return await ctx.executors.run_cpu(loaded.run, fn, *args)


# ------------------------------------------------------------------------------------------------ tags

class _UserDictionary(Mapping[tuple[int, str], tuple[str, str]]):
    """The "Dictionary" option: (tag, private creator or "") -> (VR, name). As in DCMTK, a private
    entry written "gggg,00ee" matches the element ee of any block reserved by its creator."""

    def __init__(self, entries: dict[tuple[int, str], tuple[str, str]]) -> None:
        self._entries = entries
        self.by_name = {name: tag for (tag, _), (_, name) in entries.items()}

    def __getitem__(self, key: tuple[int, str]) -> tuple[str, str]:
        found = self._entries.get(key)
        if found is None and key[1]:
            found = self._entries.get(((key[0] & 0xFFFF0000) | (key[0] & 0xFF), key[1]))
        if found is None:
            raise KeyError(key)
        return found

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def user_dictionary(ctx: ServerContext) -> _UserDictionary | None:
    """The configured "Dictionary" entries (built once per context)."""
    cached = ctx.extra.get(_DICTIONARY_KEY)
    if isinstance(cached, _UserDictionary):
        return cached if len(cached) else None
    entries: dict[tuple[int, str], tuple[str, str]] = {}
    for key, value in dict(ctx.settings.Dictionary).items():
        group, _, element = key.partition(",")
        creator = str(value[4]) if len(value) > 4 else ""
        entries[(int(group, 16) << 16 | int(element, 16), creator)] = (str(value[0]), str(value[1]))
    built = _UserDictionary(entries)
    ctx.extra[_DICTIONARY_KEY] = built
    return built if entries else None


def parse_tag_or_fail(text: str, dictionary: UserDictionary | None = None) -> int:
    """FromDcmtkBridge::ParseTag: a number in any spelling or a name; else UnknownDicomTag (HTTP 500)."""
    try:
        return parse_tag(text)
    except ValueError:
        if isinstance(dictionary, _UserDictionary) and text in dictionary.by_name:
            return dictionary.by_name[text]
        raise OrthancError(ErrorCode.UnknownDicomTag, f"Unknown DICOM tag: \"{text}\"") from None


def parse_ignore_length(value: str | None, dictionary: UserDictionary | None = None) -> frozenset[int]:
    """?ignore-length=a,b,...: split on commas (so "0010,0010" is two bad tags, as in Orthanc)."""
    if value is None:
        return frozenset()
    return frozenset(parse_tag_or_fail(part, dictionary) for part in value.split(","))


def format_json(full: dict[str, Any], fmt: str) -> dict[str, Any]:
    """Toolbox::SimplifyDicomAsJson when fmt is short or human."""
    return full if fmt == "full" else simplify_json(full, fmt)


def tags_json(loaded: LoadedDataset, ignore_length: frozenset[int], dictionary: UserDictionary | None,
              whole: bool = False) -> dict[str, Any]:
    """The Full DICOM-as-JSON of an instance (ServerContext::ReadDicomAsJson; ?whole goes past the pixels)."""
    return dataset_to_json(loaded.ds, "full", ignore_length=ignore_length, has_pixel_data=loaded.has_pixel_data,
                           user_dictionary=dictionary, stop_after_pixel_data=not whole)


def header_json(loaded: LoadedDataset, dictionary: UserDictionary | None) -> dict[str, Any]:
    return dataset_to_json(loaded.ds, "full", header=True, user_dictionary=dictionary)


def frames_count(loaded: LoadedDataset) -> int:
    """DicomFrameIndex::GetFramesCount: NumberOfFrames, 1 when absent; a bad value is a BadFileFormat."""
    text = tag_string(loaded.ds, 0x00280008)
    if not text:
        return 1
    if not re.fullmatch(r"[+-]?[0-9]+", text) or int(text) < 0:
        raise OrthancError(ErrorCode.BadFileFormat, f"Unsupported value for NumberOfFrames: {text}")
    return int(text)


def extract_pdf(loaded: LoadedDataset) -> bytes | None:
    """ParsedDicomFile::ExtractPdf: the EncapsulatedDocument of an Encapsulated PDF instance, without
    its trailing pad byte; None (no answer, hence 404) otherwise."""
    ds = loaded.ds
    if 0x00080016 not in ds or 0x00420012 not in ds or 0x00420011 not in ds:
        return None
    sop = (tag_string(ds, 0x00080016) or "").strip()
    mime = (tag_string(ds, 0x00420012) or "").strip()
    if sop != _PDF_SOP_CLASS or mime != "application/pdf":
        return None
    pdf = list_content(ds, ["00420011"])
    if not isinstance(pdf, bytes):
        return None
    return pdf[:-1] if pdf.endswith(b"\0") else pdf


def content_needs_whole(path: list[str]) -> bool:
    """Whether a /content path may reach the pixel data or the tags after it (then the whole file is read)."""
    if not path:
        return True
    try:
        return parse_tag(path[0]) >= PIXEL_DATA
    except ValueError:
        return False  # fails the same way on a prefix


def content(loaded: LoadedDataset, path: list[str], dictionary: UserDictionary | None) -> list[str] | bytes | None:
    """ParsedDicomFile::SendPathValue: None means "no answer" (Orthanc then gives 404). A bad tag name is
    UnknownDicomTag, checked only where Orthanc reaches it; item index "-1" is the last item (DCMTK)."""
    ds = loaded.ds
    if len(path) in (1, 2) and parse_tag_or_fail(path[0], dictionary) == PIXEL_DATA:
        if len(path) == 2:
            if not _INDEX.match(path[1]) or int(path[1]) < 0:
                return None
            path = [path[0], str(int(path[1]))]
        try:
            return list_content(ds, path)
        except (KeyError, ValueError):
            return None
    current = ds
    for pos in range(len(path) // 2):
        index_text = path[2 * pos + 1]
        if not _INDEX.match(index_text):
            return None
        tag = parse_tag_or_fail(path[2 * pos], dictionary)
        items = _sequence_items(current, tag, current is ds)
        if items is None:
            return None
        index = int(index_text)
        if index == -1 and items:
            index = len(items) - 1
        if not 0 <= index < len(items):
            return None
        current = items[index]
    try:
        if len(path) % 2 == 0:
            return list_content(current, [])
        last = parse_tag_or_fail(path[-1], dictionary)
        return list_content(current, [tag_key(last).replace(",", "")])
    except (KeyError, ValueError):
        return None


def _sequence_items(item: Dataset, tag: int, root: bool) -> DicomSequence | None:
    if tag not in item or root and tag in meta_tags(item):
        return None
    elem = item.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, RawDataElement) and (
            elem.VR == "SQ" or elem.length == _UNDEFINED_LENGTH
            or elem.VR is None and element_vr(elem, item) == "SQ"):
        elem = item[tag]
    value = elem.value
    return value if isinstance(value, DicomSequence) else None


# ------------------------------------------------------------------------------------------------ levels

async def resource_level(ctx: ServerContext, public_id: str) -> tuple[int, ResourceLevel]:
    """Any level: like Orthanc's GetChildInstances, the level-wide routes do not check the URI's level."""
    found = await ctx.index.find_internal(public_id)
    if found is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    return found


async def child_instances(ctx: ServerContext, public_id: str) -> list[tuple[str, AttachmentInfo]]:
    """(instance ID, DICOM attachment) of every instance below a resource of any level (one query)."""
    internal, _ = await resource_level(ctx, public_id)
    return [(instance, attachment) for instance, _, attachment in await ctx.index.descendant_attachments(internal)]


async def first_child_attachment(ctx: ServerContext, public_id: str) -> AttachmentInfo | None:
    """The DICOM attachment of instances.front() of Orthanc's GetChildInstances: its depth-first walk pops
    the newest child first, so this is the newest instance of the newest series of the newest study."""
    internal, level = await resource_level(ctx, public_id)
    while level < ResourceLevel.SERIES:
        child = ResourceLevel(level + 1)
        children = await ctx.index.expand_children(internal, level, child)
        if not children:
            return None
        internal, level = children[-1].internal_id, child
    if level is ResourceLevel.INSTANCE:
        return await _dicom_attachment(ctx, internal, public_id)
    rows = await ctx.index.descendant_attachments(internal)
    return rows[-1][2] if rows else None


async def _batches(ctx: ServerContext, instances: list[tuple[str, AttachmentInfo]], fn: Callable[..., T],
                   *args: Any) -> AsyncIterator[list[tuple[str, T]]]:
    """Run fn(loaded, *args) on every instance, BATCH_SIZE at a time; instances removed meanwhile are
    skipped (Orthanc's race-condition rule for shared-tags)."""

    async def one(public_id: str, attachment: AttachmentInfo) -> tuple[str, T] | None:
        try:
            loaded = await load(ctx, attachment, keep=False)
        except OrthancError as exc:
            if exc.code is not ErrorCode.InexistentFile:
                raise
            logger.info("Instance %s disappeared while reading its level", public_id)
            return None
        return public_id, await ctx.executors.run_cpu(loaded.run, fn, *args)

    for start in range(0, len(instances), BATCH_SIZE):
        done = await asyncio.gather(*(one(i, a) for i, a in instances[start:start + BATCH_SIZE]))
        yield [item for item in done if item is not None]


async def shared_tags(ctx: ServerContext, public_id: str) -> dict[str, Any]:
    """ExtractSharedTags: the top-level String tags with the same value in every child instance (Full format)."""
    dictionary = user_dictionary(ctx)
    shared: dict[str, Any] | None = None
    async for batch in _batches(ctx, await child_instances(ctx, public_id), _string_tags, dictionary):
        for _, tags in batch:
            if shared is None:
                shared = tags
            else:
                shared = {key: node for key, node in shared.items()
                          if key in tags and tags[key]["Value"] == node["Value"]}
    return shared or {}


def _string_tags(loaded: LoadedDataset, dictionary: UserDictionary | None) -> dict[str, Any]:
    full = tags_json(loaded, frozenset(), dictionary)
    return {key: node for key, node in full.items() if node.get("Type") == "String"}


async def instances_tags(ctx: ServerContext, public_id: str, fmt: str,
                         ignore_length: frozenset[int]) -> AsyncIterator[list[tuple[str, dict[str, Any]]]]:
    """GetChildInstancesTags, batch by batch, in the order of the instance IDs (the keys of the answer)."""
    dictionary = user_dictionary(ctx)
    instances = sorted(await child_instances(ctx, public_id), key=lambda pair: pair[0])
    async for batch in _batches(ctx, instances, _formatted_tags, fmt, ignore_length, dictionary):
        yield batch


def _formatted_tags(loaded: LoadedDataset, fmt: str, ignore_length: frozenset[int],
                    dictionary: UserDictionary | None) -> dict[str, Any]:
    return format_json(tags_json(loaded, ignore_length, dictionary), fmt)


def module_json(loaded: LoadedDataset, module: str, ignore_length: frozenset[int],
                dictionary: UserDictionary | None) -> dict[str, Any]:
    """GetModule: the Full tags of the instance, restricted to the tags of the module."""
    wanted = {tag_key(tag) for tag in MODULE_TAGS[module]}
    full = tags_json(loaded, ignore_length, dictionary)
    return {key: node for key, node in full.items() if key in wanted}
