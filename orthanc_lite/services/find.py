"""Find resources: the one search service behind /tools/find, /tools/count-resources, C-FIND and QIDO-RS.

API (see dicom/matching.py for building the IndexQuery)::

    result = await find(ctx, FindRequest(query, requested_tags=(0x00080061,), expand=True))
    for answer in result.answers:              # FindAnswer
        answer.public_id, answer.resource      # ResourceInfo when expand=True
        answer.value(0x00080061)               # "CT\\MR": a requested tag as a string (None if absent)
        answer.tags                            # {tag: full-format node or None}, every requested tag
    async for batch in FindCursor(ctx, request, batch_size=100):   # streaming (C-FIND, cancellable)
        ...
    n = await count(ctx, query)

The SQL part of the query (main DICOM tags, labels, metadata, parents, order, limit/since) runs in SQLite
(index/find.py), with the page's expansion, computed tags and ancestors' tags in the same read transaction.
Constraints on other tags are checked after SQL on values read from one instance file per candidate, through
the cpu pool, when StorageAccessOnFind is "Always"; candidates are then streamed in batches, so memory stays
bounded. LimitFindResults / LimitFindInstances cap the candidates at limit + 1, as Orthanc 1.10.1 does.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..dicom.dicom_json import dataset_to_json, tag_name
from ..dicom.matching import (
    COMPUTED_TAGS,
    SOP_CLASS_UID,
    IndexQuery,
    TagConstraint,
    main_tag_level,
)
from ..dicom.tags import tag_key
from ..dicom.values import DicomReadError, read_dataset
from ..index import find as index_find
from ..index.reads import ResourceInfo
from ..model import AttachmentInfo, MetadataType, ResourceLevel
from .context import ServerContext

logger = logging.getLogger(__name__)

DEFAULT_BATCH = 500
IDS_BATCH = 5000
Node = dict[str, Any]


@dataclass(frozen=True, slots=True)
class FindRequest:
    query: IndexQuery
    requested_tags: tuple[int, ...] = ()   # answered in FindAnswer.tags (main, computed, or read from a file)
    expand: bool = False                   # fill FindAnswer.resource (children, labels, metadata, attachment)
    attachments: bool = False              # fill FindAnswer.attachments (every attachment)
    storage_access: str | None = None      # "Always" | "Answers" | "Never"; default: StorageAccessOnFind


@dataclass(slots=True)
class FindAnswer:
    level: ResourceLevel
    internal_id: int
    public_id: str
    resource: ResourceInfo | None = None
    tags: dict[int, Node | None] = field(default_factory=dict)
    attachments: list[AttachmentInfo] = field(default_factory=list)

    def value(self, tag: int) -> str | None:
        """A requested tag as a string ("\\"-joined values); None when absent, null, binary or a sequence."""
        node = self.tags.get(tag)
        if node is None or node.get("Type") != "String":
            return None
        return str(node["Value"])


@dataclass(slots=True)
class FindResult:
    answers: list[FindAnswer]
    complete: bool   # False when LimitFindResults/LimitFindInstances cut the answers (not the request's Limit)


def database_limit(ctx: ServerContext, level: ResourceLevel) -> int:
    """LimitFindInstances at instance level, else LimitFindResults (0 = none)."""
    s = ctx.settings
    return int(s.LimitFindInstances if level is ResourceLevel.INSTANCE else s.LimitFindResults)


def with_database_limit(ctx: ServerContext, query: IndexQuery) -> IndexQuery:
    """Cap the candidates at the configured limit + 1 (Orthanc asks its database for limit + 1 rows)."""
    limit = database_limit(ctx, query.level)
    return replace(query, max_candidates=limit + 1) if limit else query


@functools.lru_cache(maxsize=4096)
def _name(tag: int) -> str:
    return tag_name(tag)


@functools.lru_cache(maxsize=4096)
def key_of(tag: int) -> str:
    """"gggg,eeee" (cached: formatting answers asks for the same few tags again and again)."""
    return tag_key(tag)


def null_node(tag: int) -> Node:
    return {"Name": _name(tag), "Type": "Null", "Value": None}


def string_node(tag: int, value: str) -> Node:
    return {"Name": _name(tag), "Type": "String", "Value": value}


class FindCursor:
    """Streams the answers of a request in batches; `complete` is known once the iteration ends.

    `complete` turns False when the candidates cap (IndexQuery.max_candidates, see with_database_limit) hid
    matches: the C-FIND SCP may then answer with a warning, as Orthanc does when LimitFindResults is reached.
    """

    def __init__(self, ctx: ServerContext, request: FindRequest, batch_size: int = DEFAULT_BATCH) -> None:
        self.ctx = ctx
        self.request = request
        self.batch_size = max(1, batch_size)
        self.complete = True
        access = request.storage_access or str(ctx.settings.StorageAccessOnFind)
        self._files_for_matching = access == "Always"
        self._files_for_answers = access in ("Always", "Answers")
        q = request.query
        self._requested = tuple(dict.fromkeys(t for t in request.requested_tags if t >> 16 != 0x0002))
        level = q.level
        self._computed = tuple(t for t in self._requested if t in COMPUTED_TAGS and level in COMPUTED_TAGS[t][1])
        self._sop_class = level is ResourceLevel.INSTANCE and SOP_CLASS_UID in self._requested
        rest = [t for t in self._requested if t not in self._computed and not (self._sop_class and t == SOP_CLASS_UID)]
        self._db_tags = tuple(t for t in rest if main_tag_level(t, level) is not None)
        self._file_tags = tuple(t for t in rest if main_tag_level(t, level) is None)

    def _answer_spec(self) -> index_find.PageSpec:
        return index_find.PageSpec(
            expand=self.request.expand,
            main_tags=bool(self._db_tags),
            computed=self._computed,
            metadata=(int(MetadataType.SopClassUid),) if self._sop_class else (),
            files=bool(self._file_tags) and self._files_for_answers,
            attachments=self.request.attachments,
        )

    async def __aiter__(self) -> AsyncIterator[list[FindAnswer]]:
        async for page, values in self._pages():
            yield await self._answers(page, values)

    async def public_ids(self) -> AsyncIterator[list[str]]:
        """The same matches as bare public IDs (no FindAnswer objects: cheap for long lists)."""
        async for page, _ in self._pages():
            yield [page.public_ids[rid] for rid in page.ids]

    async def _pages(self) -> AsyncIterator[tuple[index_find.Page, dict[int, dict[str, Node]] | None]]:
        q = self.request.query
        if q.plan.impossible:
            return
        if q.needs_post_filter:
            async for item in self._filtered():
                yield item
        else:
            async for page in self._direct():
                yield page, None

    async def _direct(self) -> AsyncIterator[index_find.Page]:
        """Everything in SQL: slices of [since, since + limit) within the candidates cap."""
        q = self.request.query
        spec = self._answer_spec()
        end = q.since + q.limit if q.limit else None
        if q.max_candidates:
            end = q.max_candidates if end is None else min(end, q.max_candidates)
        position = q.since
        after_id: int | None = None
        while end is None or position < end:
            n = self.batch_size if end is None else min(self.batch_size, end - position)
            cursor = (index_find.Cursor(limit=n, after_id=after_id) if after_id is not None
                      else index_find.Cursor(limit=n, offset=position))
            last_slice = end is not None and position + n >= end
            check = q.max_candidates - 1 if (q.max_candidates and last_slice) else None
            page = await self.ctx.index.engine.read(
                functools.partial(index_find.search_page, query=q, cursor=cursor, spec=spec, check_more_at=check))
            if check is not None and page.more:
                self.complete = False
            if page.ids:
                yield page
            if len(page.ids) < n:
                return
            position += len(page.ids)
            if not q.order_by:
                after_id = page.ids[-1]

    async def _filtered(self) -> AsyncIterator[tuple[index_find.Page, dict[int, dict[str, Node]]]]:
        """SQL candidates in batches, then computed-tag and file constraints, then since/limit."""
        q = self.request.query
        plan = q.plan
        if plan.files and not self._files_for_matching:
            return  # tags that only the files hold cannot be checked: nothing matches
        filter_spec = index_find.PageSpec(
            computed=tuple(dict.fromkeys(c.tag for c in plan.computed)),
            files=bool(plan.files) and self._files_for_matching)
        answer_spec = self._answer_spec()
        files_known = filter_spec.files  # the files read for matching also hold the requested tags
        file_tags = frozenset(c.tag for c in plan.files) | frozenset(self._file_tags)
        sql_query = replace(q, since=0, limit=0)
        scanned = skipped = emitted = 0
        after_id: int | None = None
        offset = 0
        while True:
            n = self.batch_size
            if q.limit:  # files are slow to read: fetch little more than the answers still wanted
                n = min(n, max(q.limit - emitted, 32))
            if q.max_candidates:
                n = min(n, q.max_candidates - scanned)
                if n <= 0:
                    more = await self.ctx.index.engine.read(
                        functools.partial(index_find.has_match_at, query=sql_query, position=scanned))
                    self.complete = self.complete and not more
                    return
            cursor = (index_find.Cursor(limit=n, after_id=after_id) if not q.order_by
                      else index_find.Cursor(limit=n, offset=offset))
            page = await self.ctx.index.engine.read(
                functools.partial(index_find.search_page, query=sql_query, cursor=cursor, spec=filter_spec))
            scanned += len(page.ids)
            offset += len(page.ids)
            if page.ids:
                after_id = page.ids[-1]
            values: dict[int, dict[str, Node]] = {}
            if page.files:
                values = await self._read_files(page.files, file_tags)
            matched: list[tuple[int, str]] = []
            for rid in page.ids:
                if self._match(rid, page, values):
                    if skipped < q.since:
                        skipped += 1
                        continue
                    matched.append((rid, page.public_ids[rid]))
            if q.limit and emitted + len(matched) > q.limit:
                matched = matched[: q.limit - emitted]
            if matched:
                answer_page = await self.ctx.index.engine.read(
                    functools.partial(index_find.fetch_page, level=q.level, rows=matched,
                                      spec=replace(answer_spec, files=answer_spec.files and not files_known)))
                yield answer_page, values
                emitted += len(matched)
            if q.limit and emitted >= q.limit:
                return
            if len(page.ids) < n:
                return

    def _match(self, rid: int, page: index_find.Page, values: dict[int, dict[str, Node]]) -> bool:
        plan = self.request.query.plan
        computed = page.computed.get(rid, {})
        for c in plan.computed:
            if not c.matches(computed.get(c.tag)):
                return False
        if plan.files:
            tags = values.get(rid, {})
            for c in plan.files:
                if not _node_matches(c, tags.get(tag_key(c.tag))):
                    return False
        return True

    async def _read_files(self, files: dict[int, tuple[str, int]], tags: frozenset[int]) -> dict[int, dict[str, Node]]:
        storage = self.ctx.storage
        encoding = self.ctx.default_encoding
        return await self.ctx.executors.run_cpu(_read_tags, storage, encoding, files, tags)

    async def _answers(self, page: index_find.Page,
                       known: dict[int, dict[str, Node]] | None = None) -> list[FindAnswer]:
        level = self.request.query.level
        file_values: dict[int, dict[str, Node]] = dict(known or {})
        todo = {rid: ref for rid, ref in page.files.items() if rid not in file_values}
        if todo and self._file_tags:
            file_values.update(await self._read_files(todo, frozenset(self._file_tags)))
        out: list[FindAnswer] = []
        for rid in page.ids:
            answer = FindAnswer(level, rid, page.public_ids[rid], page.infos.get(rid),
                                attachments=page.attachments.get(rid, []))
            if self._requested:
                computed = page.computed.get(rid, {})
                main = page.main_tags.get(rid, {})
                from_file = file_values.get(rid, {})
                for tag in self._requested:
                    key = key_of(tag)
                    if tag in self._computed:
                        value = computed.get(tag)
                        answer.tags[tag] = string_node(tag, value) if value is not None else null_node(tag)
                    elif self._sop_class and tag == SOP_CLASS_UID:
                        meta = page.metadata.get(rid, {}).get(int(MetadataType.SopClassUid))
                        answer.tags[tag] = string_node(tag, meta) if meta is not None else null_node(tag)
                    elif tag in self._db_tags:
                        value = main.get(key)
                        answer.tags[tag] = string_node(tag, value) if value is not None else null_node(tag)
                    else:
                        answer.tags[tag] = from_file.get(key) or null_node(tag)
            out.append(answer)
        return out


def _node_matches(c: TagConstraint, node: Node | None) -> bool:
    if node is None or node.get("Type") != "String":
        return False
    return c.matches(str(node["Value"]))


def _read_tags(storage: Any, encoding: str, files: dict[int, tuple[str, int]],
               tags: frozenset[int]) -> dict[int, dict[str, Node]]:
    """Blocking (cpu pool): the requested tags of one file per resource, as full-format nodes."""
    keys = {tag_key(t) for t in tags}
    out: dict[int, dict[str, Node]] = {}
    for rid, (uuid, compression) in files.items():
        try:
            data = storage.read_sync(uuid, compressed=compression == 2)
            ds = read_dataset(data, encoding, stop_before_pixels=True)
            full = dataset_to_json(ds, "full", ignore_length=tags)
        except (OSError, DicomReadError) as exc:
            logger.warning("Cannot read the tags of attachment %s: %s", uuid, exc)
            continue
        out[rid] = {k: v for k, v in full.items() if k in keys}
    return out


async def find(ctx: ServerContext, request: FindRequest, batch_size: int | None = None) -> FindResult:
    """All the answers of a request (use FindCursor to stream them).

    `batch_size`: resources per read transaction; by default 500 when expanding, else 5000 identifiers.
    """
    if batch_size is None:
        plain = not (request.expand or request.requested_tags or request.attachments)
        batch_size = IDS_BATCH if plain else DEFAULT_BATCH
    cursor = FindCursor(ctx, request, batch_size)
    answers: list[FindAnswer] = []
    async for batch in cursor:
        answers.extend(batch)
    return FindResult(answers, cursor.complete)


async def find_public_ids(ctx: ServerContext, query: IndexQuery) -> tuple[list[str], bool]:
    """The public IDs of the matches, and whether the database limits kept them all (REST without Expand)."""
    cursor = FindCursor(ctx, FindRequest(query), IDS_BATCH)
    out: list[str] = []
    async for batch in cursor.public_ids():
        out.extend(batch)
    return out, cursor.complete


async def count(ctx: ServerContext, query: IndexQuery) -> int:
    """The number of resources matching the query (since, limit and ordering ignored)."""
    query = replace(query, since=0, limit=0, order_by=(), max_candidates=0)
    if query.plan.impossible:
        return 0
    if not query.needs_post_filter:
        return await ctx.index.engine.read(functools.partial(index_find.count, query=query))
    total = 0
    async for batch in FindCursor(ctx, FindRequest(query), IDS_BATCH).public_ids():
        total += len(batch)
    return total
