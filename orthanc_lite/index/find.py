"""The SQL side of /tools/find, C-FIND and QIDO-RS: sync functions of a connection (run by engine.read).

`search(conn, query, cursor)` returns the internal ids matching the SQL part of an IndexQuery (built by
dicom/matching.py), with ORDER BY, LIMIT and OFFSET (Since) pushed into SQLite; the batch helpers compute
computed tags, ancestor main tags and one instance file per resource for a page of ids in a fixed number of
statements (ids go in as one JSON array). Never imports pydicom.

Query shape: the query-level resource `r`, its ancestors `a0` (patient) .. `a2` (series) joined only when a
constraint, parent or ordering needs them; one main_dicom_tags row per tag constraint (joined on the level
that stores it, see matching.main_tag_level), preceded by the normalized dicom_identifiers row when the
constraint is case-insensitive on an identifier tag (its (tag, value) index then drives the search).

Plans (SQLite has no statistics here, so it guesses that every equality finds ~10 rows): `choose_probes`
counts, under a cap, the rows each indexed constraint matches. A selective constraint drives the search
through its index and the few matches are sorted (`+r.level`, `+r.internal_id` keep SQLite from walking the
whole level instead); with a LIMIT, dense constraints are checked row by row ("+" on the value) while the
level is walked in id order, which stops at the limit without sorting.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from ..dicom.matching import (
    INSTANCE_AVAILABILITY,
    MODALITIES_IN_STUDY,
    MODALITY,
    NUMBER_OF_PATIENT_RELATED_INSTANCES,
    NUMBER_OF_PATIENT_RELATED_SERIES,
    NUMBER_OF_PATIENT_RELATED_STUDIES,
    NUMBER_OF_SERIES_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_INSTANCES,
    NUMBER_OF_STUDY_RELATED_SERIES,
    SOP_CLASSES_IN_STUDY,
    IndexQuery,
    LabelsConstraint,
    MatchKind,
    OrderCast,
    main_tag_level,
    register_functions,
    sql_exact,
    sql_metadata,
    sql_prefilter,
)
from ..model import AttachmentInfo, MetadataType, ResourceLevel
from . import reads
from .reads import ResourceInfo


@dataclass(frozen=True, slots=True)
class Cursor:
    """Which slice of the ordered matches to return: after an id (keyset, default order) and/or an offset."""

    limit: int = 0           # 0 = all
    offset: int = 0
    after_id: int | None = None  # only with the default order (internal id)


def _alias(level: ResourceLevel, query_level: ResourceLevel) -> str:
    return "r" if level == query_level else f"a{int(level)}"


def build_search(query: IndexQuery, cursor: Cursor = Cursor(), count: bool = False,
                 probe: frozenset[int] = frozenset()) -> tuple[str, list[object]]:
    """The SELECT (or COUNT) for the SQL part of `query`; every value is a bound parameter.

    `probe`: indexes (in query.plan.sql) of ModalitiesInStudy constraints to check study by study rather
    than by collecting the matching series first (see choose_probes).
    """
    level = query.level
    plan = query.plan
    params: list[object] = []
    if plan.impossible:
        return ("SELECT 0" if count else "SELECT internal_id FROM resources WHERE 0"), []

    # Ancestor levels to join.
    needed: set[ResourceLevel] = set()
    for placed in plan.sql:
        if placed.level < level:
            needed.add(placed.level)
    for parent_level, _ in query.parents:
        if parent_level < level:
            needed.add(parent_level)
    order_parts: list[str] = []
    order_params: list[object] = []
    if not count:
        for item in query.order_by:
            expr: str
            if item.tag is not None:
                stored_at = main_tag_level(item.tag, level)
                if stored_at is None:
                    continue  # not stored in the database: no effect on the order
                if stored_at < level:
                    needed.add(stored_at)
                expr = f"(SELECT value FROM main_dicom_tags WHERE id={_alias(stored_at, level)}.internal_id AND tag=?)"
                order_params.append(item.tag)
            else:
                expr = "(SELECT value FROM metadata WHERE id=r.internal_id AND type=?)"
                order_params.append(item.metadata)
            if item.cast is OrderCast.INT:
                expr = f"CAST({expr} AS INTEGER)"
            elif item.cast is OrderCast.FLOAT:
                expr = f"CAST({expr} AS REAL)"
            # Resources without the value come last in both directions, as on Orthanc's SQLite index
            # (test_extended_find_order_by: "NULL are pushed at the end").
            order_parts.append(expr + (" DESC" if item.descending else " ASC") + " NULLS LAST")

    joins: list[str] = []
    join_params: list[object] = []
    if needed:
        lowest = min(needed)
        child = "r"
        for lvl in range(int(level) - 1, int(lowest) - 1, -1):
            alias = f"a{lvl}"
            joins.append(f"JOIN resources {alias} ON {alias}.internal_id={child}.parent_id")
            child = alias

    where: list[str] = ["r.level=?"]
    where_params: list[object] = [int(level)]
    selective = bool(query.parents)  # an index finds few rows: drive from it, then sort (see below)
    for i, placed in enumerate(plan.sql):
        c = placed.constraint
        if placed.children:
            # ModalitiesInStudy: one of the child series has a matching Modality. When the index can find
            # the Modality rows, collect their studies; otherwise probe each study's few series (CROSS JOIN
            # keeps SQLite from scanning every Modality row per study).
            frag = sql_exact(c, f"m{i}.value")
            if frag.indexed and i not in probe:
                selective = True
                where.append(f"r.internal_id IN (SELECT s{i}.parent_id FROM main_dicom_tags m{i} CROSS JOIN resources s{i} "
                             f"ON s{i}.internal_id=m{i}.id WHERE m{i}.tag=? AND {frag.sql})")
            else:
                frag = sql_exact(c, f"+m{i}.value")  # "+": look the row up by (id, tag), then compare
                where.append(f"EXISTS (SELECT 1 FROM resources s{i} CROSS JOIN main_dicom_tags m{i} "
                             f"ON m{i}.id=s{i}.internal_id AND m{i}.tag=? WHERE s{i}.parent_id=r.internal_id AND {frag.sql})")
            where_params.extend((MODALITY, *frag.params))
            continue
        home = _alias(placed.level, level)
        plus = "+" if i in probe else ""  # "+": no index on the value, look the row up by (id, tag)
        if placed.identifier and not c.case_sensitive and c.kind is not MatchKind.RANGE:
            pre = sql_prefilter(c, f"{plus}d{i}.value")
            selective = selective or (pre.indexed and not plus)
            joins.append(f"JOIN dicom_identifiers d{i} ON d{i}.id={home}.internal_id AND d{i}.tag=? AND {pre.sql}")
            join_params.extend((c.tag, *pre.params))
            exact = sql_exact(c, f"{plus}c{i}.value", unicode_upper=True)
            joins.append(f"JOIN main_dicom_tags c{i} ON c{i}.id=d{i}.id AND c{i}.tag=? AND {exact.sql}")
            join_params.extend((c.tag, *exact.params))
        else:
            exact = sql_exact(c, f"{plus}c{i}.value")
            selective = selective or (exact.indexed and not plus)
            joins.append(f"JOIN main_dicom_tags c{i} ON c{i}.id={home}.internal_id AND c{i}.tag=? AND {exact.sql}")
            join_params.extend((c.tag, *exact.params))

    for j, mc in enumerate(query.metadata):
        frag = sql_metadata(mc, f"md{j}.value")
        where.append(f"EXISTS (SELECT 1 FROM metadata md{j} WHERE md{j}.id=r.internal_id AND md{j}.type=? AND {frag.sql})")
        where_params.extend((mc.metadata, *frag.params))

    labels = tuple(dict.fromkeys(query.labels))
    if query.labels_constraint is LabelsConstraint.ALL:
        for label in labels:
            where.append("r.internal_id IN (SELECT id FROM labels WHERE label=?)")
            where_params.append(label)
    elif query.labels_constraint is LabelsConstraint.ANY:
        if labels:
            where.append(f"r.internal_id IN (SELECT id FROM labels WHERE label IN ({','.join('?' * len(labels))}))")
            where_params.extend(labels)
    elif labels:
        where.append(f"r.internal_id NOT IN (SELECT id FROM labels WHERE label IN ({','.join('?' * len(labels))}))")
        where_params.extend(labels)
    else:  # None with an empty list: resources without any label (≥1.12.11)
        where.append("NOT EXISTS (SELECT 1 FROM labels WHERE id=r.internal_id)")

    for parent_level, public_id in query.parents:
        alias = _alias(parent_level, level)
        where.append(f"{alias}.internal_id=(SELECT internal_id FROM resources WHERE public_id=? AND level=?)")
        where_params.extend((public_id, int(parent_level)))

    if cursor.after_id is not None:
        where.append("r.internal_id>?")
        where_params.append(cursor.after_id)

    if selective:
        where[0] = "+r.level=?"  # (the same reason: SQLite guesses that a level holds ~10 resources)
    body = "FROM resources r " + " ".join(joins) + " WHERE " + " AND ".join(where)
    params = [*join_params, *where_params]
    if count:
        return "SELECT COUNT(*) " + body, params
    # Without statistics, SQLite likes to walk the whole level in id order to skip the sort, probing each row:
    # "+" keeps it from doing so when an index finds few rows (dense constraints were turned into probes).
    order_id = "+r.internal_id" if selective else "r.internal_id"
    sql = "SELECT r.internal_id " + body + " ORDER BY " + ", ".join([*order_parts, order_id])
    params.extend(order_params)
    if cursor.limit or cursor.offset:
        sql += " LIMIT ? OFFSET ?"
        params.extend((cursor.limit if cursor.limit else -1, cursor.offset))
    return sql, params


DENSE_FACTOR = 10


def choose_probes(conn: sqlite3.Connection, query: IndexQuery, cursor: Cursor) -> frozenset[int]:
    """The constraints better checked resource by resource than found through their index (density tests).

    SQLite has no statistics here. With a LIMIT and the default order, a constraint that many resources
    match is cheaper to check on each resource while scanning the level in id order (the scan stops at the
    limit, with no sort); a selective one is cheaper to find through the (tag, value) index. One COUNT over
    at most DENSE_FACTOR x (limit + offset) index entries tells them apart.
    """
    if not cursor.limit or query.order_by:
        return frozenset()
    cap = DENSE_FACTOR * (cursor.limit + cursor.offset)
    dense: set[int] = set()
    for i, placed in enumerate(query.plan.sql):
        c = placed.constraint
        if placed.children:
            frag = sql_exact(c, "m.value")
            sql = f"SELECT 1 FROM main_dicom_tags m WHERE m.tag=? AND {frag.sql}"
        elif placed.identifier and not c.case_sensitive and c.kind is not MatchKind.RANGE:
            frag = sql_prefilter(c, "m.value")
            sql = (f"SELECT 1 FROM dicom_identifiers m JOIN resources x ON x.internal_id=m.id AND x.level={int(placed.level)} "
                   f"WHERE m.tag=? AND {frag.sql}")
        else:
            frag = sql_exact(c, "m.value")
            sql = (f"SELECT 1 FROM main_dicom_tags m JOIN resources x ON x.internal_id=m.id AND x.level={int(placed.level)} "
                   f"WHERE m.tag=? AND {frag.sql}")
        if not frag.indexed:
            continue
        tag = MODALITY if placed.children else c.tag
        found = _execute(conn, f"SELECT COUNT(*) FROM ({sql} LIMIT ?)", [tag, *frag.params, cap])[0][0]
        if int(found) >= cap:  # type: ignore[call-overload]
            dense.add(i)
    return frozenset(dense)


def _execute(conn: sqlite3.Connection, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    """Run a search, defining ol_upper() on this connection the first time it is needed."""
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "ol_upper" not in str(exc):
            raise
        register_functions(conn)
        return conn.execute(sql, params).fetchall()


def search(conn: sqlite3.Connection, query: IndexQuery, cursor: Cursor = Cursor()) -> list[int]:
    """Internal ids matching the SQL part of `query`, ordered, one slice."""
    sql, params = build_search(query, cursor, probe=choose_probes(conn, query, cursor))
    return [int(row[0]) for row in _execute(conn, sql, params)]  # type: ignore[call-overload]


def count(conn: sqlite3.Connection, query: IndexQuery) -> int:
    sql, params = build_search(query, count=True)
    value: int = _execute(conn, sql, params)[0][0]  # type: ignore[assignment]
    return value


def explain(conn: sqlite3.Connection, query: IndexQuery, cursor: Cursor = Cursor()) -> list[str]:
    """EXPLAIN QUERY PLAN lines (tests and benchmarks check that indexes are used)."""
    sql, params = build_search(query, cursor, probe=choose_probes(conn, query, cursor))
    register_functions(conn)
    return [str(row[3]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


# --- batch helpers for one page of ids ---------------------------------------------------------


def _ids(ids: Iterable[int]) -> str:
    return orjson.dumps(list(ids)).decode()


# Batch statements start from the page's ids (json_each) and walk down with CROSS JOINs, so that SQLite
# follows the parent index from each id rather than scanning a whole level.
_COUNT_SQL = {
    1: "SELECT j.value, COUNT(*) FROM json_each(?) j CROSS JOIN resources c1 ON c1.parent_id=j.value GROUP BY j.value",
    2: "SELECT j.value, COUNT(*) FROM json_each(?) j CROSS JOIN resources c1 ON c1.parent_id=j.value "
       "CROSS JOIN resources c2 ON c2.parent_id=c1.internal_id GROUP BY j.value",
    3: "SELECT j.value, COUNT(*) FROM json_each(?) j CROSS JOIN resources c1 ON c1.parent_id=j.value "
       "CROSS JOIN resources c2 ON c2.parent_id=c1.internal_id CROSS JOIN resources c3 ON c3.parent_id=c2.internal_id "
       "GROUP BY j.value",
}

# computed tag -> (level it applies to, depth of the counted descendants)
_COUNTS: dict[int, tuple[ResourceLevel, int]] = {
    NUMBER_OF_PATIENT_RELATED_STUDIES: (ResourceLevel.PATIENT, 1),
    NUMBER_OF_PATIENT_RELATED_SERIES: (ResourceLevel.PATIENT, 2),
    NUMBER_OF_PATIENT_RELATED_INSTANCES: (ResourceLevel.PATIENT, 3),
    NUMBER_OF_STUDY_RELATED_SERIES: (ResourceLevel.STUDY, 1),
    NUMBER_OF_STUDY_RELATED_INSTANCES: (ResourceLevel.STUDY, 2),
    NUMBER_OF_SERIES_RELATED_INSTANCES: (ResourceLevel.SERIES, 1),
}


def computed_tags(conn: sqlite3.Connection, level: ResourceLevel, ids: list[int],
                  tags: Iterable[int]) -> dict[int, dict[int, str]]:
    """Values of the computed tags (FEATURES.md §6.2) for a page of resources: {id: {tag: value}}.

    At most one statement per requested computed tag, whatever the number of resources. Tags that do not apply
    at this level are left out (callers treat them as ordinary tags).
    """
    out: dict[int, dict[int, str]] = {i: {} for i in ids}
    if not ids:
        return out
    ids_json = _ids(ids)
    tags = list(dict.fromkeys(tags))
    walk = {NUMBER_OF_STUDY_RELATED_SERIES, NUMBER_OF_STUDY_RELATED_INSTANCES, MODALITIES_IN_STUDY}
    if level is ResourceLevel.STUDY and walk & set(tags):
        # One walk over the studies' series gives their count, their instances' count and their modalities.
        series: dict[int, int] = dict.fromkeys(ids, 0)
        instances: dict[int, int] = dict.fromkeys(ids, 0)
        modalities: dict[int, set[str]] = {i: set() for i in ids}
        for sid, modality, count in conn.execute(
                "SELECT j.value, m.value, (SELECT COUNT(*) FROM resources i WHERE i.parent_id=s.internal_id) "
                "FROM json_each(?) j CROSS JOIN resources s ON s.parent_id=j.value "
                "LEFT JOIN main_dicom_tags m ON m.id=s.internal_id AND m.tag=?", (ids_json, MODALITY)):
            series[sid] += 1
            instances[sid] += count
            if modality is not None:
                modalities[sid].add(modality)
        for i in ids:
            values = out[i]
            if NUMBER_OF_STUDY_RELATED_SERIES in tags:
                values[NUMBER_OF_STUDY_RELATED_SERIES] = str(series[i])
            if NUMBER_OF_STUDY_RELATED_INSTANCES in tags:
                values[NUMBER_OF_STUDY_RELATED_INSTANCES] = str(instances[i])
            if MODALITIES_IN_STUDY in tags:
                values[MODALITIES_IN_STUDY] = "\\".join(sorted(modalities[i]))
        tags = [t for t in tags if t not in walk]
    for tag in tags:
        if tag in _COUNTS:
            applies, depth = _COUNTS[tag]
            if applies != level:
                continue
            found = {int(r[0]): int(r[1]) for r in conn.execute(_COUNT_SQL[depth], (ids_json,))}
            for i in ids:
                out[i][tag] = str(found.get(i, 0))
        elif tag == SOP_CLASSES_IN_STUDY and level is ResourceLevel.STUDY:
            classes: dict[int, set[str]] = {i: set() for i in ids}
            for pid, value in conn.execute(
                    "SELECT DISTINCT j.value, md.value FROM json_each(?) j CROSS JOIN resources s ON s.parent_id=j.value "
                    "CROSS JOIN resources i ON i.parent_id=s.internal_id "
                    "CROSS JOIN metadata md ON md.id=i.internal_id AND md.type=?", (ids_json, int(MetadataType.SopClassUid))):
                classes[int(pid)].add(value)
            for i in ids:
                out[i][tag] = "\\".join(sorted(classes[i]))
        elif tag == INSTANCE_AVAILABILITY and level is not ResourceLevel.PATIENT:
            for i in ids:
                out[i][tag] = "ONLINE"
    return out


def ancestor_main_tags(conn: sqlite3.Connection, level: ResourceLevel, ids: list[int]) -> dict[int, dict[str, str]]:
    """The stored main tags of the ancestors of each resource, merged ("gggg,eeee" -> value).

    Studies already carry their patient's tags, so a series gets its study's (patient + study) tags and
    an instance its series' and study's.
    """
    out: dict[int, dict[str, str]] = {i: {} for i in ids}
    if not ids or level <= ResourceLevel.STUDY:
        return out
    ids_json = _ids(ids)
    if level is ResourceLevel.SERIES:
        rows = conn.execute(
            "SELECT r.internal_id, p.main_tags FROM resources r JOIN resources p ON p.internal_id=r.parent_id "
            "WHERE r.internal_id IN (SELECT value FROM json_each(?))", (ids_json,))
        for rid, tags in rows:
            out[int(rid)] = orjson.loads(tags)
    else:
        rows = conn.execute(
            "SELECT r.internal_id, se.main_tags, st.main_tags FROM resources r "
            "JOIN resources se ON se.internal_id=r.parent_id JOIN resources st ON st.internal_id=se.parent_id "
            "WHERE r.internal_id IN (SELECT value FROM json_each(?))", (ids_json,))
        for rid, series_tags, study_tags in rows:
            merged = orjson.loads(study_tags)
            merged.update(orjson.loads(series_tags))
            out[int(rid)] = merged
    return out


def own_main_tags(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    """The stored main tags of each resource (studies include their patient's)."""
    if not ids:
        return {}
    return {int(r[0]): orjson.loads(r[1]) for r in conn.execute(
        "SELECT internal_id, main_tags FROM resources WHERE internal_id IN (SELECT value FROM json_each(?))",
        (_ids(ids),))}


def one_instance_file(conn: sqlite3.Connection, level: ResourceLevel,
                      ids: list[int]) -> dict[int, tuple[str, int]]:
    """One instance's DICOM attachment (uuid, compression type) per resource: its first instance."""
    if not ids:
        return {}
    # The first child at each level down to the instances (MIN(id) per group: one row per resource).
    chain = "SELECT value AS root, value AS id FROM json_each(?)"
    for _ in range(int(ResourceLevel.INSTANCE) - int(level)):
        chain = (f"SELECT t.root AS root, MIN(c.internal_id) AS id FROM ({chain}) t "
                 f"JOIN resources c ON c.parent_id=t.id GROUP BY t.root")
    rows = conn.execute(f"SELECT x.root, a.uuid, a.compression_type FROM ({chain}) x "
                        f"JOIN attachments a ON a.id=x.id AND a.file_type=1", (_ids(ids),))
    return {int(r[0]): (str(r[1]), int(r[2])) for r in rows}


def metadata_values(conn: sqlite3.Connection, ids: list[int], mtype: int) -> dict[int, str]:
    if not ids:
        return {}
    return {int(r[0]): str(r[1]) for r in conn.execute(
        "SELECT id, value FROM metadata WHERE type=? AND id IN (SELECT value FROM json_each(?))", (mtype, _ids(ids)))}


def attachments(conn: sqlite3.Connection, ids: list[int]) -> dict[int, list[AttachmentInfo]]:
    """Every attachment of each resource, by content type."""
    out: dict[int, list[AttachmentInfo]] = {i: [] for i in ids}
    if not ids:
        return out
    for row in conn.execute(
            "SELECT id, uuid, file_type, uncompressed_size, compressed_size, uncompressed_md5, compressed_md5,"
            " compression_type, revision FROM attachments WHERE id IN (SELECT value FROM json_each(?)) "
            "ORDER BY id, file_type", (_ids(ids),)):
        out[int(row[0])].append(AttachmentInfo(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8]))
    return out


# --- one page: the search and everything its answers need, in one read transaction ---------------


@dataclass(frozen=True, slots=True)
class PageSpec:
    """What to fetch for each resource of a page (see services/find.py)."""

    expand: bool = False                 # reads.expand: children, labels, metadata, parent, attachment
    main_tags: bool = False              # own + ancestors' stored main tags, merged
    computed: tuple[int, ...] = ()       # computed tags to compute
    metadata: tuple[int, ...] = ()       # metadata types to read (e.g. SopClassUid)
    files: bool = False                  # one instance attachment per resource
    attachments: bool = False            # every attachment


@dataclass(slots=True)
class Page:
    ids: list[int]
    public_ids: dict[int, str]
    infos: dict[int, ResourceInfo] = field(default_factory=dict)
    main_tags: dict[int, dict[str, str]] = field(default_factory=dict)
    computed: dict[int, dict[int, str]] = field(default_factory=dict)
    metadata: dict[int, dict[int, str]] = field(default_factory=dict)
    files: dict[int, tuple[str, int]] = field(default_factory=dict)
    attachments: dict[int, list[AttachmentInfo]] = field(default_factory=dict)
    more: bool = False                   # more matches exist beyond the candidates cap


def search_rows(conn: sqlite3.Connection, query: IndexQuery, cursor: Cursor) -> list[tuple[int, str]]:
    """(internal id, public id) of one slice of the matches."""
    sql, params = build_search(query, cursor, probe=choose_probes(conn, query, cursor))
    sql = sql.replace("SELECT r.internal_id ", "SELECT r.internal_id, r.public_id ", 1)
    return [(int(r[0]), str(r[1])) for r in _execute(conn, sql, params)]  # type: ignore[call-overload]


def has_match_at(conn: sqlite3.Connection, query: IndexQuery, position: int) -> bool:
    """Whether a match exists at this (0-based) position of the ordered matches."""
    return bool(search(conn, query, Cursor(limit=1, offset=position)))


def fetch_page(conn: sqlite3.Connection, level: ResourceLevel, rows: list[tuple[int, str]], spec: PageSpec) -> Page:
    """Everything `spec` asks for, for these resources, in a fixed number of statements."""
    ids = [r[0] for r in rows]
    page = Page(ids, dict(rows))
    if not ids:
        return page
    if spec.expand:
        page.infos = {info.internal_id: info for info in reads.expand(conn, level, ids)}
    if spec.main_tags:
        own = ({i: info.main_tags for i, info in page.infos.items()} if spec.expand else own_main_tags(conn, ids))
        merged = ancestor_main_tags(conn, level, ids)
        for i in ids:
            tags = merged.get(i, {})
            tags.update(own.get(i, {}))
            page.main_tags[i] = tags
    if spec.computed:
        page.computed = computed_tags(conn, level, ids, spec.computed)
    for mtype in spec.metadata:
        for i, value in metadata_values(conn, ids, mtype).items():
            page.metadata.setdefault(i, {})[mtype] = value
    if spec.files:
        page.files = one_instance_file(conn, level, ids)
    if spec.attachments:
        page.attachments = attachments(conn, ids)
    return page


def search_page(conn: sqlite3.Connection, query: IndexQuery, cursor: Cursor, spec: PageSpec,
                check_more_at: int | None = None) -> Page:
    """One slice of the matches and what `spec` asks for, in one read transaction (one thread hop)."""
    page = fetch_page(conn, query.level, search_rows(conn, query, cursor), spec)
    if check_more_at is not None:
        page.more = has_match_at(conn, query, check_more_at)
    return page
