"""Read queries of the index, as sync functions of a connection. Lists are fetched per level in a
fixed number of statements (never one query per row): ids go in as one JSON array parameter.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import orjson

from ..model import AttachmentInfo, Change, ChangeType, MetadataType, ResourceLevel


@dataclass(slots=True)
class ResourceInfo:
    """One resource with everything an expanded answer needs."""

    internal_id: int
    level: ResourceLevel
    public_id: str
    parent_public_id: str | None
    main_tags: dict[str, str]
    children: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    metadata: dict[int, str] = field(default_factory=dict)
    dicom_attachment: AttachmentInfo | None = None
    child_indexes: list[str] = field(default_factory=list)   # series only: the instances' IndexInSeries
    is_protected: bool = False


def find_internal(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None = None) -> tuple[int, ResourceLevel] | None:
    if level is None:
        row = conn.execute("SELECT internal_id, level FROM resources WHERE public_id=?", (public_id,)).fetchone()
    else:
        row = conn.execute("SELECT internal_id, level FROM resources WHERE public_id=? AND level=?",
                           (public_id, int(level))).fetchone()
    return (int(row[0]), ResourceLevel(row[1])) if row else None


def list_public_ids(conn: sqlite3.Connection, level: ResourceLevel, since: int = 0, limit: int = 0) -> list[str]:
    sql = "SELECT public_id FROM resources WHERE level=? ORDER BY internal_id"
    args: tuple[int, ...] = (int(level),)
    if limit:
        sql += " LIMIT ? OFFSET ?"
        args = (int(level), limit, since)
    elif since:
        sql += " LIMIT -1 OFFSET ?"
        args = (int(level), since)
    return [r[0] for r in conn.execute(sql, args)]


def _selector(level: ResourceLevel, internal_ids: list[int] | None, since: int, limit: int) -> tuple[str, tuple[object, ...]]:
    """A sub-select of the internal ids to expand: a whole level (paged) or an explicit list."""
    if internal_ids is not None:
        return "SELECT value FROM json_each(?)", (orjson.dumps(internal_ids).decode(),)
    sql = "SELECT internal_id FROM resources WHERE level=? ORDER BY internal_id"
    if limit or since:
        sql += " LIMIT ? OFFSET ?"
        return sql, (int(level), limit if limit else -1, since)
    return sql, (int(level),)


def expand(conn: sqlite3.Connection, level: ResourceLevel, internal_ids: list[int] | None = None,
           since: int = 0, limit: int = 0, with_metadata: bool = True) -> list[ResourceInfo]:
    """Expand a set of resources of one level, in a fixed number of statements."""
    sel, args = _selector(level, internal_ids, since, limit)
    rows = conn.execute(
        f"SELECT r.internal_id, r.public_id, r.main_tags, p.public_id FROM resources r "
        f"LEFT JOIN resources p ON p.internal_id=r.parent_id WHERE r.internal_id IN ({sel}) AND r.level=?",
        (*args, int(level))).fetchall()
    infos = {int(r[0]): ResourceInfo(int(r[0]), level, r[1], r[3], orjson.loads(r[2])) for r in rows}
    if not infos:
        return []
    ids_json = orjson.dumps(list(infos)).decode()
    if level is not ResourceLevel.INSTANCE:
        for pid, child in conn.execute(
                "SELECT parent_id, public_id FROM resources WHERE parent_id IN (SELECT value FROM json_each(?)) "
                "ORDER BY internal_id", (ids_json,)):
            infos[pid].children.append(child)
    for rid, label in conn.execute(
            "SELECT id, label FROM labels WHERE id IN (SELECT value FROM json_each(?)) ORDER BY label", (ids_json,)):
        infos[rid].labels.append(label)
    if with_metadata:
        for rid, mtype, value in conn.execute(
                "SELECT id, type, value FROM metadata WHERE id IN (SELECT value FROM json_each(?))", (ids_json,)):
            infos[rid].metadata[mtype] = value
    if level is ResourceLevel.INSTANCE:
        for row in conn.execute(
                "SELECT id, uuid, file_type, uncompressed_size, compressed_size, uncompressed_md5, compressed_md5,"
                " compression_type, revision FROM attachments WHERE file_type=1 AND id IN (SELECT value FROM json_each(?))",
                (ids_json,)):
            infos[row[0]].dicom_attachment = AttachmentInfo(row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8])
    if level is ResourceLevel.SERIES:
        # Only a series that knows its expected number of instances has a Status to compute.
        with_expected = [i for i, info in infos.items() if MetadataType.ExpectedNumberOfInstances in info.metadata]
        if with_expected:
            for sid, value in conn.execute(
                    "SELECT r.parent_id, m.value FROM resources r JOIN metadata m ON m.id=r.internal_id AND m.type=? "
                    "WHERE r.parent_id IN (SELECT value FROM json_each(?))",
                    (int(MetadataType.IndexInSeries), orjson.dumps(with_expected).decode())):
                infos[sid].child_indexes.append(value)
    if level is ResourceLevel.PATIENT:
        for (pid,) in conn.execute(
                "SELECT patient_id FROM protected_patients WHERE patient_id IN (SELECT value FROM json_each(?))", (ids_json,)):
            infos[pid].is_protected = True
    order = internal_ids if internal_ids is not None else [int(r[0]) for r in rows]
    return [infos[i] for i in order if i in infos]


def children_internal(conn: sqlite3.Connection, internal_id: int, target: ResourceLevel, parent_level: ResourceLevel) -> list[int]:
    """Internal ids of the descendants at `target` level of one resource."""
    sql = "SELECT ?"
    for _ in range(int(target) - int(parent_level)):
        sql = f"SELECT internal_id FROM resources WHERE parent_id IN ({sql})"
    return [int(r[0]) for r in conn.execute(sql + " ORDER BY internal_id", (internal_id,))]


def ancestor_internal(conn: sqlite3.Connection, internal_id: int, levels_up: int) -> int | None:
    current: int | None = internal_id
    for _ in range(levels_up):
        row = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (current,)).fetchone()
        current = row[0] if row else None
        if current is None:
            return None
    return current


def descendant_attachments(conn: sqlite3.Connection, internal_id: int) -> list[tuple[str, str, AttachmentInfo]]:
    """(instance public id, series public id, dicom attachment) of every instance under a resource, in order."""
    rows = conn.execute(
        "WITH RECURSIVE sub(id, lvl) AS (SELECT internal_id, level FROM resources WHERE internal_id=? "
        " UNION ALL SELECT r.internal_id, r.level FROM resources r JOIN sub ON r.parent_id=sub.id) "
        "SELECT r.public_id, p.public_id, a.uuid, a.file_type, a.uncompressed_size, a.compressed_size, a.uncompressed_md5,"
        " a.compressed_md5, a.compression_type, a.revision FROM sub JOIN resources r ON r.internal_id=sub.id "
        "JOIN resources p ON p.internal_id=r.parent_id JOIN attachments a ON a.id=r.internal_id AND a.file_type=1 "
        "WHERE sub.lvl=3 ORDER BY r.internal_id", (internal_id,)).fetchall()
    return [(r[0], r[1], AttachmentInfo(r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9])) for r in rows]


def attachments_of(conn: sqlite3.Connection, internal_id: int) -> dict[int, AttachmentInfo]:
    return {int(r[0]): AttachmentInfo(r[1], r[0], r[2], r[3], r[4], r[5], r[6], r[7]) for r in conn.execute(
        "SELECT file_type, uuid, uncompressed_size, compressed_size, uncompressed_md5, compressed_md5, compression_type,"
        " revision FROM attachments WHERE id=?", (internal_id,))}


def metadata_of(conn: sqlite3.Connection, internal_id: int) -> dict[int, tuple[str, int]]:
    return {int(r[0]): (r[1], int(r[2])) for r in conn.execute(
        "SELECT type, value, revision FROM metadata WHERE id=? ORDER BY type", (internal_id,))}


def labels_of(conn: sqlite3.Connection, internal_id: int) -> list[str]:
    return [r[0] for r in conn.execute("SELECT label FROM labels WHERE id=? ORDER BY label", (internal_id,))]


def all_labels(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT DISTINCT label FROM labels ORDER BY label")]


def is_protected(conn: sqlite3.Connection, internal_id: int) -> bool:
    return conn.execute("SELECT 1 FROM protected_patients WHERE patient_id=?", (internal_id,)).fetchone() is not None


def lookup_identifier(conn: sqlite3.Connection, value: str) -> list[tuple[ResourceLevel, str]]:
    """Resources whose PatientID / StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID equal value (/tools/lookup)."""
    from ..dicom.tags import LEVEL_UID_TAG
    from .normalize import normalize_identifier

    out: list[tuple[ResourceLevel, str]] = []
    for level, tag in LEVEL_UID_TAG.items():
        for (pid,) in conn.execute(
                "SELECT r.public_id FROM dicom_identifiers d JOIN resources r ON r.internal_id=d.id "
                "WHERE d.tag=? AND d.value=? AND r.level=? ORDER BY r.internal_id",
                (tag, normalize_identifier(value), int(level))):
            out.append((level, pid))
    return out


_CHANGE_COLUMNS = ("SELECT c.seq, c.change_type, c.resource_type, r.public_id, c.date FROM changes c "
                   "JOIN resources r ON r.internal_id=c.internal_id")


def get_changes(conn: sqlite3.Connection, since: int, limit: int, to: int | None = None,
                types: tuple[ChangeType, ...] = ()) -> tuple[list[Change], bool, int]:
    """Changes with since < seq (<= to), of the given types if any (limit+1 fetched to compute Done), and the last
    seq ever allocated. With `to` and no `since`, the page is the last `limit` changes up to `to`, so that clients
    browse the log backwards with to=First-1 (ExtendedChanges)."""
    where, params = ["c.seq>?"], [since]
    if to is not None:
        where.append("c.seq<=?")
        params.append(to)
    if types:
        where.append(f"c.change_type IN ({','.join('?' * len(types))})")
        params.extend(int(t) for t in types)
    backwards = to is not None and since <= 0
    sql = f"{_CHANGE_COLUMNS} WHERE {' AND '.join(where)} ORDER BY c.seq {'DESC' if backwards else 'ASC'} LIMIT ?"
    rows = conn.execute(sql, (*params, limit + 1)).fetchall()
    done = len(rows) <= limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    changes = [Change(r[0], ChangeType(r[1]), ResourceLevel(r[2]), r[3], r[4]) for r in rows]
    return changes, done, last_change_seq(conn)


def last_change(conn: sqlite3.Connection) -> list[Change]:
    rows = conn.execute(
        "SELECT c.seq, c.change_type, c.resource_type, r.public_id, c.date FROM changes c "
        "JOIN resources r ON r.internal_id=c.internal_id ORDER BY c.seq DESC LIMIT 1").fetchall()
    return [Change(r[0], ChangeType(r[1]), ResourceLevel(r[2]), r[3], r[4]) for r in rows]


def last_change_seq(conn: sqlite3.Connection) -> int:
    """The last seq ever allocated, as Orthanc's GetLastChangeIndex: it survives the removal of the changes of
    deleted resources and DELETE /changes (checked against Orthanc 1.10.1); 0 before the first change."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='changes'").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def get_exports(conn: sqlite3.Connection, since: int, limit: int) -> tuple[list[dict[str, object]], bool, int]:
    rows = conn.execute(
        "SELECT seq, resource_type, public_id, remote_modality, patient_id, study_instance_uid, series_instance_uid,"
        " sop_instance_uid, date FROM exported_resources WHERE seq>? ORDER BY seq LIMIT ?", (since, limit + 1)).fetchall()
    done = len(rows) <= limit
    out: list[dict[str, object]] = []
    for r in rows[:limit]:
        level = ResourceLevel(r[1])
        item: dict[str, object] = {"Seq": r[0], "ResourceType": level.type_name, "ID": r[2],
                                   "Path": f"/{level.plural}/{r[2]}", "RemoteModality": r[3], "Date": r[8],
                                   "PatientID": r[4]}
        if level >= ResourceLevel.STUDY:
            item["StudyInstanceUID"] = r[5]
        if level >= ResourceLevel.SERIES:
            item["SeriesInstanceUID"] = r[6]
        if level >= ResourceLevel.INSTANCE:
            item["SOPInstanceUID"] = r[7]
        out.append(item)
    last = conn.execute("SELECT MAX(seq) FROM exported_resources").fetchone()[0] or 0
    return out, done, int(last)


def statistics(conn: sqlite3.Connection) -> dict[str, int]:
    counts = {ResourceLevel(r[0]): int(r[1]) for r in conn.execute("SELECT level, COUNT(*) FROM resources GROUP BY level")}
    sizes = conn.execute("SELECT COALESCE(SUM(compressed_size),0), COALESCE(SUM(uncompressed_size),0) FROM attachments").fetchone()
    return {
        "CountPatients": counts.get(ResourceLevel.PATIENT, 0),
        "CountStudies": counts.get(ResourceLevel.STUDY, 0),
        "CountSeries": counts.get(ResourceLevel.SERIES, 0),
        "CountInstances": counts.get(ResourceLevel.INSTANCE, 0),
        "TotalDiskSize": int(sizes[0]),
        "TotalUncompressedSize": int(sizes[1]),
    }


def resource_statistics(conn: sqlite3.Connection, internal_id: int) -> dict[str, int]:
    rows = conn.execute(
        "WITH RECURSIVE sub(id, lvl) AS (SELECT internal_id, level FROM resources WHERE internal_id=? "
        " UNION ALL SELECT r.internal_id, r.level FROM resources r JOIN sub ON r.parent_id=sub.id) "
        "SELECT sub.lvl, COUNT(DISTINCT sub.id), COALESCE(SUM(a.compressed_size),0), COALESCE(SUM(a.uncompressed_size),0),"
        " COALESCE(SUM(CASE WHEN a.file_type=1 THEN a.compressed_size END),0),"
        " COALESCE(SUM(CASE WHEN a.file_type=1 THEN a.uncompressed_size END),0) "
        "FROM sub LEFT JOIN attachments a ON a.id=sub.id GROUP BY sub.lvl", (internal_id,)).fetchall()
    counts: dict[int, int] = {}
    disk = unc = ddisk = dunc = 0
    for lvl, count, d, u, dd, du in rows:
        counts[int(lvl)] = int(count)
        disk += d
        unc += u
        ddisk += dd
        dunc += du
    return {"disk": disk, "uncompressed": unc, "dicom_disk": ddisk, "dicom_uncompressed": dunc,
            **{f"count{lvl}": c for lvl, c in counts.items()}}


def all_attachment_uuids(conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
    """uuid -> (owning resource internal id, attachment type) (start-up consistency check)."""
    return {r[0]: (int(r[1]), int(r[2])) for r in conn.execute("SELECT uuid, id, file_type FROM attachments")}


def global_property(conn: sqlite3.Connection, prop: int) -> str | None:
    row = conn.execute("SELECT value FROM global_properties WHERE property=?", (prop,)).fetchone()
    return row[0] if row else None


# --- Metadata, attachments and labels of one resource, by public id (services/metadata.py) -------
# Each returns None when the resource is unknown (or not of `level`, when a level is given).

def _internal_of(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None) -> int | None:
    found = find_internal(conn, public_id, level)
    return found[0] if found is not None else None


def resource_metadata(conn: sqlite3.Connection, public_id: str,
                      level: ResourceLevel | None) -> dict[int, tuple[str, int]] | None:
    internal = _internal_of(conn, public_id, level)
    return None if internal is None else metadata_of(conn, internal)


def resource_attachments(conn: sqlite3.Connection, public_id: str,
                         level: ResourceLevel | None) -> dict[int, AttachmentInfo] | None:
    internal = _internal_of(conn, public_id, level)
    return None if internal is None else attachments_of(conn, internal)


def instance_dicom_file(conn: sqlite3.Connection, public_id: str) -> tuple[bool, AttachmentInfo | None]:
    """(whether the instance exists, its DICOM attachment) in ONE statement: its own consistent snapshot, so
    it needs no BEGIN/COMMIT around it (the image routes run it for every request)."""
    row = conn.execute(
        "SELECT a.file_type, a.uuid, a.uncompressed_size, a.compressed_size, a.uncompressed_md5, a.compressed_md5,"
        " a.compression_type, a.revision FROM resources r LEFT JOIN attachments a ON a.id=r.internal_id"
        " AND a.file_type=1 WHERE r.public_id=? AND r.level=?", (public_id, int(ResourceLevel.INSTANCE))).fetchone()
    if row is None:
        return False, None
    return True, None if row[1] is None else AttachmentInfo(row[1], row[0], row[2], row[3], row[4], row[5], row[6],
                                                              row[7])


def resource_labels(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None) -> list[str] | None:
    internal = _internal_of(conn, public_id, level)
    return None if internal is None else labels_of(conn, internal)
