"""SQLite connections: one writer with group commit, a few readers, each call one thread hop.

Writes are queued; the writer task drains the queue and runs every pending write in ONE
`BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT, so that concurrent ingests share one
commit (and one fsync) while a failing write rolls back alone. Every caller is answered only after
the commit. Reads run as one sync function on one of the reader connections (WAL: they never block
the writer). aiosqlite owns the threads; `_execute` runs a function on its thread (Datasette-style).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import aiosqlite

from ..errors import ErrorCode, OrthancError
from . import schema

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 30_000


@dataclass(slots=True)
class _WriteItem:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]


@dataclass(slots=True)
class Statements:
    """Counts SQL statements (tests use it to prove list endpoints are not N+1)."""

    count: int = 0
    enabled: bool = False
    log: list[str] = field(default_factory=list)


class SqliteEngine:
    def __init__(self, path: str, readers: int = 2) -> None:
        self.path = path
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._queue: asyncio.Queue[_WriteItem | None] = asyncio.Queue()
        self._writer_task: asyncio.Task[None] | None = None
        self._closed = False
        self.statements = Statements()

    async def open(self) -> None:
        self._writer = await self._connect()
        await self._writer._execute(schema.migrate, self._writer._conn)
        for _ in range(self._reader_count):
            self._readers.append(await self._connect())
        self._writer_task = asyncio.create_task(self._write_loop(), name="index-writer")

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (a deferred transaction upgraded
        # to a write gets SQLITE_BUSY at once and ignores busy_timeout).
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA cache_size=-16000")  # 16 MiB per connection: bounded memory
        await conn.set_trace_callback(self._trace)
        return conn

    def _trace(self, statement: str) -> None:
        if self.statements.enabled:
            self.statements.count += 1
            self.statements.log.append(statement)

    async def close(self) -> None:
        """Idempotent: finish queued writes, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._writer_task is not None:
            await self._queue.put(None)
            await self._writer_task
        for conn in [self._writer, *self._readers]:
            if conn is not None:
                await conn.close()
        self._readers.clear()
        self._writer = None

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(conn) on a reader connection (one thread hop, a consistent WAL snapshot inside BEGIN)."""
        if self._closed or not self._readers:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        conn = self._readers[self._next_reader % len(self._readers)]
        self._next_reader += 1
        return await conn._execute(_read_tx, conn._conn, fn)  # type: ignore[no-any-return]

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(conn) in a savepoint of the next group transaction; answer after COMMIT."""
        if self._closed:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        await self._queue.put(_WriteItem(fn, future))
        return await future

    async def _write_loop(self) -> None:
        assert self._writer is not None
        writer = self._writer
        stop = False
        while not stop:
            item = await self._queue.get()
            if item is None:
                break
            batch = [item]
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            fns = [b.fn for b in batch]
            try:
                outcomes = await writer._execute(_write_batch, writer._conn, fns)
            except BaseException as exc:  # the commit itself failed: every write of the batch failed
                logger.error("Index transaction failed: %s", exc)
                err = OrthancError(ErrorCode.Database, str(exc))
                for b in batch:
                    if not b.future.done():
                        b.future.set_exception(err)
                continue
            for b, (ok, value) in zip(batch, outcomes):
                if b.future.done():
                    continue
                if ok:
                    b.future.set_result(value)
                else:
                    b.future.set_exception(value)


def _read_tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


def _write_batch(conn: sqlite3.Connection, fns: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
    """One transaction for the whole batch; retries BUSY with linear backoff plus jitter (one place, as Orthanc)."""
    for attempt in range(10):
        try:
            conn.execute("BEGIN IMMEDIATE")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    else:
        raise OrthancError(ErrorCode.DatabaseCannotSerialize)
    outcomes: list[tuple[bool, Any]] = []
    try:
        for fn in fns:
            conn.execute("SAVEPOINT w")
            try:
                value = fn(conn)
            except Exception as exc:
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
                outcomes.append((False, exc))
                continue
            conn.execute("RELEASE w")
            outcomes.append((True, value))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes
