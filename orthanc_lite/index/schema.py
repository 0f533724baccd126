"""DDL of the SQLite index, with numbered migrations tracked by PRAGMA user_version."""

from __future__ import annotations

import sqlite3
from typing import Final

# Resource rows carry their main tags as JSON (one read expands a resource); main_dicom_tags and
# dicom_identifiers repeat them as rows so that searches use indexes.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE resources(
        internal_id INTEGER PRIMARY KEY,
        level INTEGER NOT NULL,
        public_id TEXT NOT NULL,
        parent_id INTEGER REFERENCES resources(internal_id) ON DELETE CASCADE,
        main_tags TEXT NOT NULL DEFAULT '{}'
    );
    CREATE UNIQUE INDEX resources_public_id ON resources(public_id);
    CREATE INDEX resources_parent ON resources(parent_id);
    CREATE INDEX resources_level ON resources(level, internal_id);

    CREATE TABLE main_dicom_tags(
        id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        tag INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY(id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX main_dicom_tags_value ON main_dicom_tags(tag, value);

    CREATE TABLE dicom_identifiers(
        id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        tag INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY(id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX dicom_identifiers_value ON dicom_identifiers(tag, value);

    CREATE TABLE metadata(
        id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        type INTEGER NOT NULL,
        value TEXT NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(id, type)
    ) WITHOUT ROWID;

    CREATE TABLE attachments(
        id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        file_type INTEGER NOT NULL,
        uuid TEXT NOT NULL,
        compressed_size INTEGER NOT NULL,
        uncompressed_size INTEGER NOT NULL,
        compression_type INTEGER NOT NULL,
        uncompressed_md5 TEXT NOT NULL,
        compressed_md5 TEXT NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY(id, file_type)
    ) WITHOUT ROWID;

    CREATE TABLE changes(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        change_type INTEGER NOT NULL,
        internal_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        resource_type INTEGER NOT NULL,
        date TEXT NOT NULL
    );
    CREATE INDEX changes_internal_id ON changes(internal_id);

    CREATE TABLE exported_resources(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        resource_type INTEGER NOT NULL,
        public_id TEXT NOT NULL,
        remote_modality TEXT NOT NULL,
        patient_id TEXT NOT NULL,
        study_instance_uid TEXT NOT NULL,
        series_instance_uid TEXT NOT NULL,
        sop_instance_uid TEXT NOT NULL,
        date TEXT NOT NULL
    );

    CREATE TABLE labels(
        id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE,
        label TEXT NOT NULL,
        PRIMARY KEY(id, label)
    ) WITHOUT ROWID;
    CREATE INDEX labels_label ON labels(label, id);

    CREATE TABLE patient_recycling_order(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        patient_id INTEGER NOT NULL REFERENCES resources(internal_id) ON DELETE CASCADE
    );
    CREATE INDEX patient_recycling_patient ON patient_recycling_order(patient_id);

    CREATE TABLE protected_patients(
        patient_id INTEGER PRIMARY KEY REFERENCES resources(internal_id) ON DELETE CASCADE
    );

    CREATE TABLE global_properties(
        property INTEGER PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 2: the jobs engine's saved jobs (SaveJobs), one JSON document per job, listed in submission order.
    """
    CREATE TABLE jobs(
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    """,
)

DATABASE_VERSION: Final = 6  # what /system reports as DatabaseVersion (Orthanc's schema number)


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations that this database has not seen yet, each in its own transaction."""
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    for number, ddl in enumerate(MIGRATIONS, start=1):
        if number <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
