"""SqliteEngine.read_sync: the worker threads' own query-only connections (one per thread, opened on first use),
refused after close, and all closed by close()."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

import pytest

from orthanc_lite.errors import OrthancError
from orthanc_lite.index.sqlite import SqliteIndex


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM resources").fetchone()[0])


async def test_read_sync_per_thread_query_only_and_closed(tmp_path) -> None:
    index = SqliteIndex(str(tmp_path / "db"))
    await index.open()
    engine = index.engine
    connections: list[sqlite3.Connection] = []

    def in_thread() -> None:
        assert engine.read_sync(_count) == 0
        assert engine.read_sync(_count, single_statement=True) == 0
        connections.append(engine._thread_local.conn)
        with pytest.raises(sqlite3.OperationalError):  # query_only: a reader never writes
            engine.read_sync(lambda conn: conn.execute("DELETE FROM resources"), single_statement=True)

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(conn) for conn in connections}) == 2  # one connection per thread
    assert await asyncio.to_thread(index.instance_dicom_file_sync, "nope") == (False, None)
    await index.close()
    for conn in connections:
        with pytest.raises(sqlite3.ProgrammingError):  # closed with the index
            conn.execute("SELECT 1")
    with pytest.raises(OrthancError):
        await asyncio.to_thread(engine.read_sync, _count)
