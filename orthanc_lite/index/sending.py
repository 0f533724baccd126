"""Reads for the outgoing transfers (C-STORE SCU, peers): the instances under a set of resources, with the
metadata that choose presentation contexts, and the identifiers that /exports records."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ..model import AttachmentInfo, MetadataType, ResourceLevel

_INSTANCES = (
    "WITH RECURSIVE sub(id, lvl) AS (SELECT internal_id, level FROM resources WHERE internal_id=? "
    " UNION ALL SELECT r.internal_id, r.level FROM resources r JOIN sub ON r.parent_id=sub.id) "
    "SELECT r.public_id, a.uuid, a.file_type, a.uncompressed_size, a.compressed_size, a.uncompressed_md5,"
    " a.compressed_md5, a.compression_type, a.revision,"
    f" (SELECT value FROM metadata m WHERE m.id=r.internal_id AND m.type={int(MetadataType.SopClassUid)}),"
    f" (SELECT value FROM metadata m WHERE m.id=r.internal_id AND m.type={int(MetadataType.TransferSyntax)}),"
    " (SELECT value FROM main_dicom_tags t WHERE t.id=r.internal_id AND t.tag=0x00080018) "
    "FROM sub JOIN resources r ON r.internal_id=sub.id "
    "JOIN attachments a ON a.id=r.internal_id AND a.file_type=1 WHERE sub.lvl=3 ORDER BY r.internal_id"
)

# The identifier of each level, as /exports lists them.
_UID_TAGS = {ResourceLevel.PATIENT: 0x00100020, ResourceLevel.STUDY: 0x0020000D,
             ResourceLevel.SERIES: 0x0020000E, ResourceLevel.INSTANCE: 0x00080018}


@dataclass(frozen=True, slots=True)
class OutgoingInstance:
    """One stored instance to send: its file and what the presentation contexts need."""

    public_id: str
    attachment: AttachmentInfo
    sop_class: str
    transfer_syntax: str
    sop_instance: str = ""  # the data set's SOPInstanceUID (its File Meta may say otherwise)


@dataclass(frozen=True, slots=True)
class ExportedResource:
    public_id: str
    level: ResourceLevel
    uids: tuple[str, str, str, str]  # PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID ("" below)


def _instances_under(conn: sqlite3.Connection, internal_id: int) -> list[OutgoingInstance]:
    return [OutgoingInstance(r[0], AttachmentInfo(r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]), r[9] or "",
                             r[10] or "", r[11] or "") for r in conn.execute(_INSTANCES, (internal_id,))]


def resolve(conn: sqlite3.Connection, public_ids: list[str]) -> tuple[list[ExportedResource], list[OutgoingInstance],
                                                                        list[str]]:
    """(the resources found, the instances under each of them in order, the unknown IDs)."""
    found: list[ExportedResource] = []
    instances: list[OutgoingInstance] = []
    unknown: list[str] = []
    for public_id in public_ids:
        row = conn.execute("SELECT internal_id, level FROM resources WHERE public_id=?", (public_id,)).fetchone()
        if row is None:
            unknown.append(public_id)
            continue
        level = ResourceLevel(row[1])
        found.append(ExportedResource(public_id, level, _uids(conn, int(row[0]), level)))
        # No de-duplication: Orthanc sends (and counts) an instance once per requested resource holding it.
        instances.extend(_instances_under(conn, int(row[0])))
    return found, instances, unknown


def instances_by_id(conn: sqlite3.Connection, public_ids: list[str]) -> dict[str, OutgoingInstance]:
    """The instances of this list that still exist (a saved job reloads its list with this)."""
    out: dict[str, OutgoingInstance] = {}
    for public_id in public_ids:
        row = conn.execute("SELECT internal_id FROM resources WHERE public_id=? AND level=3", (public_id,)).fetchone()
        if row is not None:
            for instance in _instances_under(conn, int(row[0])):
                out[instance.public_id] = instance
    return out


def _uids(conn: sqlite3.Connection, internal_id: int, level: ResourceLevel) -> tuple[str, str, str, str]:
    values = ["", "", "", ""]
    current: int | None = internal_id
    current_level: ResourceLevel | None = level
    while current is not None and current_level is not None:
        row = conn.execute("SELECT value FROM main_dicom_tags WHERE id=? AND tag=?",
                           (current, _UID_TAGS[current_level])).fetchone()
        values[int(current_level)] = row[0] if row else ""
        parent = conn.execute("SELECT parent_id FROM resources WHERE internal_id=?", (current,)).fetchone()
        current = parent[0] if parent else None
        current_level = current_level.parent
    return values[0], values[1], values[2], values[3]
