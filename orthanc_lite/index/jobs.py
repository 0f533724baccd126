"""The saved jobs (SaveJobs): sync functions of a connection, run by the index's writer or readers."""

from __future__ import annotations

import sqlite3


def save_jobs(conn: sqlite3.Connection, rows: list[tuple[str, int, str]]) -> None:
    """Insert or replace (id, seq, JSON document) rows."""
    conn.executemany("INSERT OR REPLACE INTO jobs(id, seq, data) VALUES (?, ?, ?)", rows)


def delete_jobs(conn: sqlite3.Connection, ids: list[str]) -> None:
    conn.executemany("DELETE FROM jobs WHERE id=?", [(i,) for i in ids])


def load_jobs(conn: sqlite3.Connection) -> list[tuple[str, int, str]]:
    return [(r[0], r[1], r[2]) for r in conn.execute("SELECT id, seq, data FROM jobs ORDER BY seq")]
