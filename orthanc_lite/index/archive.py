"""Read side of archives: every instance below a set of resources, with its parents' main tags, in one
read transaction and a fixed number of statements (no query per resource)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import orjson

from ..model import AttachmentType, MetadataType, ResourceLevel


@dataclass(frozen=True, slots=True)
class ArchivedInstance:
    """One instance to put in an archive: its file and the public IDs and main tags of its parents."""

    instance_id: str
    series_id: str
    study_id: str
    patient_id: str
    uuid: str
    size: int
    compressed: bool
    index_in_series: int


@dataclass(frozen=True, slots=True)
class ArchiveContent:
    instances: list[ArchivedInstance]
    tags: dict[str, dict[str, str]]  # public ID of each patient/study/series -> its main tags ("gggg,eeee")
    missing: list[str]  # requested public IDs that do not exist


_DESCENDANT_INSTANCES = """
WITH RECURSIVE down(id, level) AS (
    SELECT internal_id, level FROM resources WHERE public_id IN (SELECT value FROM json_each(?))
    UNION
    SELECT c.internal_id, c.level FROM resources c JOIN down d ON c.parent_id = d.id
)
SELECT i.public_id, s.public_id, st.public_id, p.public_id, a.uuid, a.uncompressed_size, a.compression_type,
       m.value
FROM down
JOIN resources i ON i.internal_id = down.id
JOIN resources s ON s.internal_id = i.parent_id
JOIN resources st ON st.internal_id = s.parent_id
JOIN resources p ON p.internal_id = st.parent_id
JOIN attachments a ON a.id = i.internal_id AND a.file_type = ?
LEFT JOIN metadata m ON m.id = i.internal_id AND m.type = ?
WHERE down.level = ?
"""


def _index_in_series(value: str | None) -> int:
    """IndexInSeries is stored verbatim (e.g. " 3"); like Orthanc's ParseUnsignedInteger32, anything that is not
    an unsigned integer counts as 0."""
    text = (value or "").strip()
    return int(text) if text.isdigit() and int(text) < 2**32 else 0


def missing_resources(conn: sqlite3.Connection, public_ids: list[str]) -> list[str]:
    """The IDs of `public_ids` (any level) that do not exist, in their order (one statement)."""
    found = {row[0] for row in conn.execute(
        "SELECT public_id FROM resources WHERE public_id IN (SELECT value FROM json_each(?))",
        (orjson.dumps(public_ids).decode(),))}
    return [pid for pid in public_ids if pid not in found]


def archive_content(conn: sqlite3.Connection, public_ids: list[str]) -> ArchiveContent:
    """The instances below `public_ids` (any level; duplicates and overlaps are merged)."""
    ids_json = orjson.dumps(public_ids).decode()
    missing = missing_resources(conn, public_ids)
    instances = []
    for row in conn.execute(_DESCENDANT_INSTANCES, (ids_json, int(AttachmentType.DICOM),
                                                   int(MetadataType.IndexInSeries), int(ResourceLevel.INSTANCE))):
        instances.append(ArchivedInstance(
            row[0], row[1], row[2], row[3], row[4], int(row[5]), int(row[6]) != 1, _index_in_series(row[7])))
    parents = sorted({i.series_id for i in instances} | {i.study_id for i in instances}
                     | {i.patient_id for i in instances})
    tags = {row[0]: orjson.loads(row[1]) for row in conn.execute(
        "SELECT public_id, main_tags FROM resources WHERE public_id IN (SELECT value FROM json_each(?))",
        (orjson.dumps(parents).decode(),))}
    return ArchiveContent(instances, tags, missing)
