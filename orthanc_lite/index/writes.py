"""Write transactions of the index, as sync functions of a connection (run by the engine's writer).

Each function is one use case; nothing here awaits or touches files: the caller removes the files
whose UUIDs these functions return, after the commit.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import orjson

from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, AttachmentType, ChangeType, MetadataType, ResourceLevel
from ..dicom.tags import IDENTIFIER_TAGS, signature
from .normalize import normalize_identifier
from .reads import find_internal


@dataclass(frozen=True, slots=True)
class NewInstance:
    """Everything the store transaction writes for one instance (built by services/store.py)."""

    public_ids: tuple[str, str, str, str]              # patient, study, series, instance
    tags: tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str]]  # per level, "gggg,eeee" -> value
    instance_metadata: dict[int, str]
    series_expected: int | None
    index_in_series: str | None                      # the IndexInSeries metadata, verbatim
    attachment: tuple[str, int, int, int, str, str]  # uuid, compressed, uncompressed, compression, md5, cmd5
    now: str
    series_metadata: dict[int, str] = field(default_factory=dict)  # written when the series is created
    overwrite: str = "Never"                         # Never, Always, IfChanged
    max_storage_bytes: int = 0
    max_patients: int = 0
    reject_when_full: bool = False
    # Metadata of the parent levels (ModifiedFrom/AnonymizedFrom of a modified instance): (level, type, value).
    parent_metadata: tuple[tuple[int, int, str], ...] = ()


@dataclass(slots=True)
class StoreOutcome:
    already_stored: bool = False
    changes: list[tuple[int, ChangeType, ResourceLevel, str]] = field(default_factory=list)  # seq, type, level, public id
    removed_uuids: list[tuple[str, bool]] = field(default_factory=list)                      # uuid, compressed
    new_levels: list[ResourceLevel] = field(default_factory=list)
    delta_bytes: int = 0


@dataclass(slots=True)
class DeleteOutcome:
    remaining_ancestor: tuple[ResourceLevel, str] | None
    removed_uuids: list[tuple[str, bool]]
    delta_bytes: int


RawChange = tuple[int, ChangeType, ResourceLevel, str]  # seq, type, level, public id


def _log_change(conn: sqlite3.Connection, change: ChangeType, internal_id: int, level: ResourceLevel, public_id: str,
                now: str) -> RawChange:
    cur = conn.execute("INSERT INTO changes(change_type, internal_id, resource_type, date) VALUES (?,?,?,?)",
                       (int(change), internal_id, int(level), now))
    return int(cur.lastrowid or 0), change, level, public_id


def _set_metadata(conn: sqlite3.Connection, internal_id: int, mtype: int, value: str) -> None:
    conn.execute(
        "INSERT INTO metadata(id, type, value, revision) VALUES (?,?,?,0) "
        "ON CONFLICT(id, type) DO UPDATE SET value=excluded.value, revision=revision+1",
        (internal_id, mtype, value),
    )


def store_instance(conn: sqlite3.Connection, new: NewInstance) -> StoreOutcome:
    out = StoreOutcome()
    patient_pid, study_pid, series_pid, instance_pid = new.public_ids
    known = _internal_ids(conn, new.public_ids)
    existing = known.get(instance_pid)
    if existing is not None:
        if new.overwrite == "Never":
            out.already_stored = True
            return out
        if new.overwrite == "IfChanged":
            row = conn.execute("SELECT uncompressed_md5 FROM attachments WHERE id=? AND file_type=1",
                               (existing,)).fetchone()
            if row is not None and row[0] == new.attachment[4]:
                out.already_stored = True
                return out
        # Overwrite: delete the old instance as DELETE would, with the ancestors it leaves empty (Orthanc's
        # ResourceDeleted trigger): their metadata, labels and changes go too, so re-uploading the only
        # instance of a study replaces its StableStudy change by a new one (test_overwrite_generates_stable_study).
        old_parent = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (existing,)).fetchone()[0]
        removed, delta = _delete_subtree(conn, existing)
        _prune_empty_ancestors(conn, old_parent)
        out.removed_uuids.extend(removed)
        out.delta_bytes += delta

    if _enforce_quota(conn, new, out, patient_pid) or existing is not None:
        known = _internal_ids(conn, new.public_ids)  # recycling or the overwrite may have removed parents

    parent: int | None = None
    internal_ids: list[int] = []
    tag_rows: list[tuple[int, int, str]] = []
    identifier_rows: list[tuple[int, int, str]] = []
    metadata_rows: list[tuple[int, int, str]] = []
    for level in ResourceLevel:
        pid = new.public_ids[level]
        found = known.get(pid)
        if found is not None and level is not ResourceLevel.INSTANCE:
            internal = found
        else:
            tags = new.tags[level]
            if level is ResourceLevel.STUDY:
                tags = {**new.tags[ResourceLevel.PATIENT], **tags}  # Orthanc copies the patient tags onto studies
            cur = conn.execute(
                "INSERT INTO resources(level, public_id, parent_id, main_tags) VALUES (?,?,?,?)",
                (int(level), pid, parent, orjson.dumps(tags).decode()),
            )
            internal = int(cur.lastrowid or 0)
            tag_rows.extend((internal, int(k.replace(",", ""), 16), v) for k, v in tags.items())
            identifier_rows.extend(
                (internal, t, normalize_identifier(tags.get(f"{t >> 16:04x},{t & 0xFFFF:04x}", "")))
                for t in IDENTIFIER_TAGS[level])
            metadata_rows.append((internal, int(MetadataType.MainDicomTagsSignature), signature(level)))
            out.new_levels.append(level)
        internal_ids.append(internal)
        parent = internal

    patient_internal, study_internal, series_internal, instance_internal = internal_ids
    metadata_rows.extend((instance_internal, int(mtype), value) for mtype, value in new.instance_metadata.items())
    metadata_rows.extend((internal_ids[level], mtype, value) for level, mtype, value in new.parent_metadata)
    if new.index_in_series is not None:
        metadata_rows.append((instance_internal, int(MetadataType.IndexInSeries), new.index_in_series))
    if ResourceLevel.SERIES in out.new_levels:
        if new.series_expected is not None:
            metadata_rows.append((series_internal, int(MetadataType.ExpectedNumberOfInstances),
                                  str(new.series_expected)))
        metadata_rows.extend((series_internal, mtype, value) for mtype, value in new.series_metadata.items())
    metadata_rows.extend((internal, int(MetadataType.LastUpdate), new.now)
                         for internal in (patient_internal, study_internal, series_internal))
    # One statement per table whatever the row count: each statement is a GIL release and re-acquisition,
    # and under load every re-acquisition waits behind the threads that parse.
    conn.execute("INSERT INTO main_dicom_tags(id, tag, value) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
                 (orjson.dumps(tag_rows).decode(),))
    conn.execute("INSERT INTO dicom_identifiers(id, tag, value) SELECT value->>0, value->>1, value->>2 FROM json_each(?)",
                 (orjson.dumps(identifier_rows).decode(),))
    conn.execute(
        "INSERT INTO metadata(id, type, value, revision) SELECT value->>0, value->>1, value->>2, 0 FROM json_each(?) "
        "WHERE true ON CONFLICT(id, type) DO UPDATE SET value=excluded.value, revision=revision+1",
        (orjson.dumps(metadata_rows).decode(),))

    uuid, csize, usize, compression, md5, cmd5 = new.attachment
    conn.execute(
        "INSERT INTO attachments(id, file_type, uuid, compressed_size, uncompressed_size, compression_type,"
        " uncompressed_md5, compressed_md5, revision) VALUES (?,?,?,?,?,?,?,?,0)",
        (instance_internal, int(AttachmentType.DICOM), uuid, csize, usize, compression, md5, cmd5),
    )
    out.delta_bytes += csize

    # Changes: NewInstance first, then the parents that are new (FEATURES.md §5.4).
    out.changes.append(_log_change(conn, ChangeType.NewInstance, instance_internal, ResourceLevel.INSTANCE, instance_pid,
                                   new.now))
    for level, change in ((ResourceLevel.SERIES, ChangeType.NewSeries), (ResourceLevel.STUDY, ChangeType.NewStudy),
                          (ResourceLevel.PATIENT, ChangeType.NewPatient)):
        if level in out.new_levels:
            out.changes.append(_log_change(conn, change, internal_ids[level], level, new.public_ids[level], new.now))

    if _series_just_completed(conn, series_internal, new.index_in_series):
        out.changes.append(_log_change(conn, ChangeType.CompletedSeries, series_internal, ResourceLevel.SERIES, series_pid,
                                       new.now))

    # The patient becomes the most recently used one, unless it is protected (a protected patient has no
    # row in the order, so "already the most recent" needs no protection check: the usual case is one read).
    newest = conn.execute("SELECT patient_id FROM patient_recycling_order ORDER BY seq DESC LIMIT 1").fetchone()
    if (newest is None or newest[0] != patient_internal) and conn.execute(
            "SELECT 1 FROM protected_patients WHERE patient_id=?", (patient_internal,)).fetchone() is None:
        conn.execute("DELETE FROM patient_recycling_order WHERE patient_id=?", (patient_internal,))
        conn.execute("INSERT INTO patient_recycling_order(patient_id) VALUES (?)", (patient_internal,))
    return out


def _internal_ids(conn: sqlite3.Connection, public_ids: tuple[str, ...]) -> dict[str, int]:
    """public id -> internal id of those that exist, in one statement."""
    return dict(conn.execute("SELECT public_id, internal_id FROM resources WHERE public_id IN (?,?,?,?)",
                             public_ids).fetchall())


def _series_just_completed(conn: sqlite3.Connection, series_internal: int, index: str | None) -> bool:
    row = conn.execute("SELECT value FROM metadata WHERE id=? AND type=?",
                       (series_internal, int(MetadataType.ExpectedNumberOfInstances))).fetchone()
    if row is None or index is None:
        return False
    expected = int(row[0])
    # Complete needs exactly `expected` instances: count first, read their indexes only then.
    count = conn.execute("SELECT COUNT(*) FROM resources WHERE parent_id=?", (series_internal,)).fetchone()[0]
    if count != expected:
        return False
    indexes = [r[0] for r in conn.execute(
        "SELECT m.value FROM resources r JOIN metadata m ON m.id=r.internal_id AND m.type=? WHERE r.parent_id=?",
        (int(MetadataType.IndexInSeries), series_internal))]
    return series_status(expected, indexes) == "Complete"


def series_status(expected: int | None, indexes: list[str]) -> str:
    """Complete when IndexInSeries values are exactly 1..N, Inconsistent on a duplicate or out-of-range index."""
    if expected is None:
        return "Unknown"
    seen: set[int] = set()
    for text in indexes:
        try:
            value = int(text)
        except ValueError:
            return "Unknown"
        if value < 1 or value > expected or value in seen:
            return "Inconsistent"
        seen.add(value)
    return "Complete" if len(seen) == expected else "Missing"


def _enforce_quota(conn: sqlite3.Connection, new: NewInstance, out: StoreOutcome, patient_pid: str) -> bool:
    """MaximumStorageSize / MaximumPatientCount: reject (FullStorage) or recycle the oldest unprotected patients.
    True when patients were recycled."""
    if not new.max_storage_bytes and not new.max_patients:
        return False
    incoming = new.attachment[1]
    patient_exists = conn.execute("SELECT 1 FROM resources WHERE public_id=?", (patient_pid,)).fetchone() is not None

    def over() -> bool:
        if new.max_patients:
            count = conn.execute("SELECT COUNT(*) FROM resources WHERE level=0").fetchone()[0]
            if count + (0 if patient_exists else 1) > new.max_patients:
                return True
        if new.max_storage_bytes:
            total = conn.execute("SELECT COALESCE(SUM(compressed_size),0) FROM attachments").fetchone()[0]
            if total + incoming > new.max_storage_bytes:
                return True
        return False

    recycled = False
    while over():
        if new.reject_when_full:
            raise OrthancError(ErrorCode.FullStorage)
        row = conn.execute(
            "SELECT o.patient_id FROM patient_recycling_order o JOIN resources r ON r.internal_id=o.patient_id "
            "WHERE r.public_id<>? ORDER BY o.seq LIMIT 1", (patient_pid,)).fetchone()
        if row is None:
            raise OrthancError(ErrorCode.FullStorage, "Cannot recycle more patients")
        removed, delta = _delete_subtree(conn, int(row[0]))
        out.removed_uuids.extend(removed)
        out.delta_bytes += delta
        recycled = True
    return recycled


def _delete_subtree(conn: sqlite3.Connection, internal_id: int) -> tuple[list[tuple[str, bool]], int]:
    """Delete a resource and its descendants (FK cascades); return their attachments to remove from storage."""
    rows = conn.execute(
        "WITH RECURSIVE sub(id) AS (SELECT ? UNION ALL SELECT r.internal_id FROM resources r JOIN sub ON r.parent_id=sub.id) "
        "SELECT a.uuid, a.compression_type, a.compressed_size FROM attachments a JOIN sub ON a.id=sub.id",
        (internal_id,)).fetchall()
    conn.execute("DELETE FROM resources WHERE internal_id=?", (internal_id,))
    return [(r[0], r[1] != 1) for r in rows], -sum(r[2] for r in rows)


def delete_resource(conn: sqlite3.Connection, public_id: str, level: ResourceLevel, now: str) -> DeleteOutcome:
    """Delete a resource, then every ancestor that became empty; answer the first remaining ancestor."""
    row = conn.execute("SELECT internal_id, parent_id FROM resources WHERE public_id=? AND level=?",
                       (public_id, int(level))).fetchone()
    if row is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    removed, delta = _delete_subtree(conn, int(row[0]))
    survivor = _prune_empty_ancestors(conn, row[1])
    remaining: tuple[ResourceLevel, str] | None = None
    if survivor is not None:
        srow = conn.execute("SELECT level, public_id FROM resources WHERE internal_id=?", (survivor,)).fetchone()
        remaining = (ResourceLevel(srow[0]), srow[1])
        # The ancestors of a deleted resource get a new LastUpdate.
        anc: int | None = survivor
        while anc is not None:
            _set_metadata(conn, anc, MetadataType.LastUpdate, now)
            nxt = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (anc,)).fetchone()
            anc = nxt[0] if nxt else None
    return DeleteOutcome(remaining, removed, delta)


def _prune_empty_ancestors(conn: sqlite3.Connection, parent: int | None) -> int | None:
    """Delete `parent` and its ancestors while they have no child left; return the first one that remains."""
    while parent is not None:
        if conn.execute("SELECT 1 FROM resources WHERE parent_id=? LIMIT 1", (parent,)).fetchone() is not None:
            return parent
        prow = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (parent,)).fetchone()
        conn.execute("DELETE FROM resources WHERE internal_id=?", (parent,))
        parent = prow[0] if prow else None
    return None


def log_change(conn: sqlite3.Connection, change: ChangeType, public_id: str, now: str) -> RawChange | None:
    found = find_internal(conn, public_id)
    if found is None:
        return None
    return _log_change(conn, change, found[0], found[1], public_id, now)


def set_protected(conn: sqlite3.Connection, patient_internal: int, protected: bool) -> None:
    if protected:
        conn.execute("INSERT OR IGNORE INTO protected_patients(patient_id) VALUES (?)", (patient_internal,))
        conn.execute("DELETE FROM patient_recycling_order WHERE patient_id=?", (patient_internal,))
    else:
        deleted = conn.execute("DELETE FROM protected_patients WHERE patient_id=?", (patient_internal,)).rowcount
        if deleted:
            conn.execute("INSERT INTO patient_recycling_order(patient_id) VALUES (?)", (patient_internal,))


def add_label(conn: sqlite3.Connection, internal_id: int, label: str) -> None:
    conn.execute("INSERT OR IGNORE INTO labels(id, label) VALUES (?,?)", (internal_id, label))


def remove_label(conn: sqlite3.Connection, internal_id: int, label: str) -> None:
    conn.execute("DELETE FROM labels WHERE id=? AND label=?", (internal_id, label))


def clear_changes(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM changes")


def clear_exports(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM exported_resources")


def log_export(conn: sqlite3.Connection, level: ResourceLevel, public_id: str, modality: str,
               uids: tuple[str, str, str, str], now: str) -> None:
    conn.execute(
        "INSERT INTO exported_resources(resource_type, public_id, remote_modality, patient_id, study_instance_uid,"
        " series_instance_uid, sop_instance_uid, date) VALUES (?,?,?,?,?,?,?,?)",
        (int(level), public_id, modality, *uids, now))


def set_global_property(conn: sqlite3.Connection, prop: int, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO global_properties(property, value) VALUES (?,?)", (prop, value))


def remove_orphan_rows(conn: sqlite3.Connection, instance_ids: list[int], attachments: list[tuple[int, int]]) -> None:
    """Start-up repair: delete instances whose DICOM file is gone (then their empty parents are pruned), and the
    rows of other attachments whose file is gone (their resource stays)."""
    conn.executemany("DELETE FROM attachments WHERE id=? AND file_type=?", attachments)
    for internal in instance_ids:
        row = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (internal,)).fetchone()
        conn.execute("DELETE FROM resources WHERE internal_id=?", (internal,))
        _prune_empty_ancestors(conn, row[0] if row else None)


# --- Metadata, attachments and labels of one resource (used by services/metadata.py) -------------
# `expected` is the (revision, MD5) of an If-Match header, or None for an unconditional write. As in
# Orthanc's StatelessDatabaseOperations, a write that targets an existing item with a stale pair is a
# Revision error (409); a write that creates the item ignores `expected`.


def _lookup_resource(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None) -> tuple[int, ResourceLevel]:
    found = find_internal(conn, public_id, level)
    if found is None:
        raise OrthancError(ErrorCode.UnknownResource)
    return found


def _text_md5(value: str) -> str:
    import hashlib

    return hashlib.md5(value.encode("utf-8")).hexdigest()


def set_user_metadata(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None, mtype: int, value: str,
                      expected: tuple[int, str] | None, now: str) -> tuple[int, RawChange]:
    """Create or replace one metadata; logs UpdatedMetadata. Returns the new revision and the change."""
    internal, real_level = _lookup_resource(conn, public_id, level)
    row = conn.execute("SELECT value, revision FROM metadata WHERE id=? AND type=?", (internal, mtype)).fetchone()
    if row is None:
        revision = 0
        conn.execute("INSERT INTO metadata(id, type, value, revision) VALUES (?,?,?,0)", (internal, mtype, value))
    else:
        if expected is not None and (int(row[1]) != expected[0] or _text_md5(row[0]) != expected[1]):
            raise OrthancError(ErrorCode.Revision)
        revision = int(row[1]) + 1
        conn.execute("UPDATE metadata SET value=?, revision=? WHERE id=? AND type=?", (value, revision, internal, mtype))
    return revision, _log_change(conn, ChangeType.UpdatedMetadata, internal, real_level, public_id, now)


def delete_user_metadata(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None, mtype: int,
                         expected: tuple[int, str] | None, now: str) -> RawChange:
    """Delete one metadata (UnknownResource when absent, as Orthanc answers); logs UpdatedMetadata."""
    internal, real_level = _lookup_resource(conn, public_id, level)
    row = conn.execute("SELECT value, revision FROM metadata WHERE id=? AND type=?", (internal, mtype)).fetchone()
    if row is None:
        raise OrthancError(ErrorCode.UnknownResource)
    if expected is not None and (int(row[1]) != expected[0] or _text_md5(row[0]) != expected[1]):
        raise OrthancError(ErrorCode.Revision)
    conn.execute("DELETE FROM metadata WHERE id=? AND type=?", (internal, mtype))
    return _log_change(conn, ChangeType.UpdatedMetadata, internal, real_level, public_id, now)


def _insert_attachment(conn: sqlite3.Connection, internal: int, att: AttachmentInfo, revision: int) -> None:
    conn.execute(
        "INSERT INTO attachments(id, file_type, uuid, compressed_size, uncompressed_size, compression_type,"
        " uncompressed_md5, compressed_md5, revision) VALUES (?,?,?,?,?,?,?,?,?)",
        (internal, att.content_type, att.uuid, att.compressed_size, att.uncompressed_size, att.compression,
         att.uncompressed_md5, att.compressed_md5, revision))


def set_attachment(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None, att: AttachmentInfo,
                   expected: tuple[int, str] | None, now: str) -> tuple[int, list[tuple[str, bool]], RawChange]:
    """Create or replace an attachment; returns the new revision, the replaced file to remove, the change."""
    internal, real_level = _lookup_resource(conn, public_id, level)
    row = conn.execute("SELECT uuid, compression_type, revision, uncompressed_md5 FROM attachments "
                       "WHERE id=? AND file_type=?", (internal, att.content_type)).fetchone()
    removed: list[tuple[str, bool]] = []
    if row is None:
        revision = 0
    else:
        if expected is not None and (int(row[2]) != expected[0] or row[3] != expected[1]):
            raise OrthancError(ErrorCode.Revision)
        revision = int(row[2]) + 1
        conn.execute("DELETE FROM attachments WHERE id=? AND file_type=?", (internal, att.content_type))
        removed.append((row[0], row[1] != 1))
    _insert_attachment(conn, internal, att, revision)
    return revision, removed, _log_change(conn, ChangeType.UpdatedAttachment, internal, real_level, public_id, now)


def delete_attachment(conn: sqlite3.Connection, public_id: str, level: ResourceLevel | None, file_type: int,
                      expected: tuple[int, str] | None, now: str) -> tuple[list[tuple[str, bool]], RawChange]:
    """Delete an attachment (UnknownResource when absent); returns the file to remove and the change."""
    internal, real_level = _lookup_resource(conn, public_id, level)
    row = conn.execute("SELECT uuid, compression_type, revision, uncompressed_md5 FROM attachments "
                       "WHERE id=? AND file_type=?", (internal, file_type)).fetchone()
    if row is None:
        raise OrthancError(ErrorCode.UnknownResource)
    if expected is not None and (int(row[2]) != expected[0] or row[3] != expected[1]):
        raise OrthancError(ErrorCode.Revision)
    conn.execute("DELETE FROM attachments WHERE id=? AND file_type=?", (internal, file_type))
    change = _log_change(conn, ChangeType.UpdatedAttachment, internal, real_level, public_id, now)
    return [(row[0], row[1] != 1)], change


def replace_attachment_file(conn: sqlite3.Connection, public_id: str, old_uuid: str, att: AttachmentInfo,
                            now: str) -> RawChange:
    """Swap the file of an attachment (compress/uncompress) if it is still old_uuid; bumps the revision."""
    internal, real_level = _lookup_resource(conn, public_id, None)
    row = conn.execute("SELECT uuid FROM attachments WHERE id=? AND file_type=?",
                       (internal, att.content_type)).fetchone()
    if row is None or row[0] != old_uuid:
        raise OrthancError(ErrorCode.Revision, "The attachment was modified in the meantime")
    conn.execute(
        "UPDATE attachments SET uuid=?, compressed_size=?, uncompressed_size=?, compression_type=?, uncompressed_md5=?,"
        " compressed_md5=?, revision=revision+1 WHERE id=? AND file_type=?",
        (att.uuid, att.compressed_size, att.uncompressed_size, att.compression, att.uncompressed_md5,
         att.compressed_md5, internal, att.content_type))
    return _log_change(conn, ChangeType.UpdatedAttachment, internal, real_level, public_id, now)


def modify_label(conn: sqlite3.Connection, public_id: str, level: ResourceLevel, label: str, add: bool) -> None:
    """Add (idempotent) or remove (absent is fine) one label of a resource of this level."""
    internal, _ = _lookup_resource(conn, public_id, level)
    if add:
        add_label(conn, internal, label)
    else:
        remove_label(conn, internal, label)


def update_main_tags(conn: sqlite3.Connection, rows: list[tuple[str, int, dict[str, str]]]) -> int:
    """/reconstruct: replace the main DICOM tags (and their search rows and signature) of existing resources,
    given as (public id, level, "gggg,eeee" -> value). Returns how many resources were found."""
    updated = 0
    for public_id, level_value, tags in rows:
        level = ResourceLevel(level_value)
        found = conn.execute("SELECT internal_id FROM resources WHERE public_id=? AND level=?",
                             (public_id, int(level))).fetchone()
        if found is None:
            continue
        internal = int(found[0])
        conn.execute("UPDATE resources SET main_tags=? WHERE internal_id=?", (orjson.dumps(tags).decode(), internal))
        conn.execute("DELETE FROM main_dicom_tags WHERE id=?", (internal,))
        conn.executemany("INSERT INTO main_dicom_tags(id, tag, value) VALUES (?,?,?)",
                         [(internal, int(k.replace(",", ""), 16), v) for k, v in tags.items()])
        conn.execute("DELETE FROM dicom_identifiers WHERE id=?", (internal,))
        conn.executemany("INSERT INTO dicom_identifiers(id, tag, value) VALUES (?,?,?)",
                         [(internal, t, normalize_identifier(tags.get(f"{t >> 16:04x},{t & 0xFFFF:04x}", "")))
                          for t in IDENTIFIER_TAGS[level]])
        _set_metadata(conn, internal, MetadataType.MainDicomTagsSignature, signature(level))
        updated += 1
    return updated
