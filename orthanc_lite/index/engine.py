"""SQLite connections: one writer with group commit, a few readers, each call one thread hop.

Writes are sync functions of a connection. `write_sync(fn)` (from a worker thread: the ingest pipeline
parses, writes the file and indexes in one hop) and `await write(fn)` (from the loop, run on the writer
connection's aiosqlite thread) join the same leader/follower group commit: the thread that takes the
commit lock runs every pending write in ONE `BEGIN IMMEDIATE` transaction, each inside its own SAVEPOINT,
so that concurrent ingests share one commit while a failing write rolls back alone; the others find their
write done when they get the lock. Every caller is answered only after the commit. Reads run as one sync
function on one of the reader connections (WAL: they never block the writer). aiosqlite owns the
connections' threads; `_execute` runs a function on its thread (Datasette-style).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar

import aiosqlite

from ..errors import ErrorCode, OrthancError
from . import schema

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 30_000
# WAL checkpoints run on a connection of their own every CHECKPOINT_PERIOD_S after writes: inside a commit
# (SQLite's default, every 1000 pages, ~40 instances here) one took several ms and stalled every ingest behind it.
CHECKPOINT_PERIOD_S = 0.5
WRITER_AUTOCHECKPOINT_PAGES = 16_000  # backstop (64 MiB of WAL) should the background checkpoints fall behind


@dataclass(slots=True)
class _PendingWrite:
    fn: Callable[[sqlite3.Connection], Any]
    barrier: Future[Any] | None = None  # must succeed before this write may commit (its file's fsync)
    done: bool = False
    ok: bool = False
    value: Any = None


@dataclass(slots=True)
class Statements:
    """Counts SQL statements (tests use it to prove list endpoints are not N+1)."""

    count: int = 0
    enabled: bool = False
    log: list[str] = field(default_factory=list)


class SqliteEngine:
    def __init__(self, path: str, readers: int = 2, commit_turn: threading.Lock | None = None) -> None:
        """`commit_turn`: a lock the leader holds while it commits (see Executors.cpu_turn)."""
        self.path = path
        self._commit_turn = commit_turn or threading.Lock()
        self._reader_count = readers
        self._writer: aiosqlite.Connection | None = None
        self._readers: list[aiosqlite.Connection] = []
        self._next_reader = 0
        self._commit_lock = threading.Lock()   # held by the leader while it runs a group transaction
        self._pending_lock = threading.Lock()  # guards _pending
        self._pending: list[_PendingWrite] = []
        self._writer_gone = False              # set under the commit lock once the writer is closing
        self._commits = 0                      # group transactions since the last checkpoint
        self._checkpointer: aiosqlite.Connection | None = None
        self._checkpoint_task: asyncio.Task[None] | None = None
        self._closed = False
        self.statements = Statements()
        # read_sync(): one connection per worker thread, opened on first use, all closed by close()
        self._thread_local = threading.local()
        self._sync_readers: list[sqlite3.Connection] = []
        self._sync_readers_lock = threading.Lock()

    async def open(self) -> None:
        # The writer is used by whichever thread leads a group commit, always under the commit lock.
        self._writer = await self._connect(check_same_thread=False)
        await self._writer._execute(schema.migrate, self._writer._conn)
        await self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
        for _ in range(self._reader_count):
            self._readers.append(await self._connect())
        self._checkpointer = await self._connect(trace=False)  # not counted: it runs at any moment
        self._checkpoint_task = asyncio.create_task(self._checkpoint_loop(), name="index-checkpoints")

    async def _checkpoint_loop(self) -> None:
        assert self._checkpointer is not None
        checkpointer = self._checkpointer
        while not self._closed:
            await asyncio.sleep(CHECKPOINT_PERIOD_S)
            if not self._commits:
                continue
            self._commits = 0
            try:
                await checkpointer._execute(_checkpoint, checkpointer._conn)
            except Exception as exc:  # the writer's backstop checkpoints still bound the WAL
                logger.warning("Background WAL checkpoint failed: %s", exc)

    async def _connect(self, check_same_thread: bool = True, trace: bool = True) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves (a deferred transaction upgraded
        # to a write gets SQLITE_BUSY at once and ignores busy_timeout).
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                       check_same_thread=check_same_thread)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA cache_size=-16000")  # 16 MiB per connection: bounded memory
        if trace:
            await conn.set_trace_callback(self._trace)
        return conn

    def _trace(self, statement: str) -> None:
        if self.statements.enabled:
            self.statements.count += 1
            self.statements.log.append(statement)

    async def close(self) -> None:
        """Idempotent: finish the writes already submitted, then close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._checkpoint_task is not None:
            self._checkpoint_task.cancel()
            try:
                await self._checkpoint_task
            except asyncio.CancelledError:
                pass
        if self._writer is not None:
            await self._writer._execute(self._retire_writer)
        for conn in [self._writer, *self._readers, self._checkpointer]:
            if conn is not None:
                await conn.close()
        with self._sync_readers_lock:
            sync_readers, self._sync_readers = self._sync_readers, []
        for sync_reader in sync_readers:
            sync_reader.close()
        self._readers.clear()
        self._writer = self._checkpointer = None

    def _retire_writer(self) -> None:
        with self._commit_lock:
            while self._pending:  # every write submitted before close, however many batches that takes
                self._commit_pending()
            self._writer_gone = True

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(conn) on a reader connection (one thread hop, a consistent WAL snapshot inside BEGIN)."""
        if self._closed or not self._readers:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        conn = self._readers[self._next_reader % len(self._readers)]
        self._next_reader += 1
        return await conn._execute(_read_tx, conn._conn, fn)  # type: ignore[no-any-return]

    def read_sync(self, fn: Callable[[sqlite3.Connection], T], single_statement: bool = False) -> T:
        """`read()` for a worker thread (never the loop's), on that thread's own query-only connection: a request
        whose other work already runs in a pool (an image) then needs no extra hop to an aiosqlite thread.
        `single_statement`: fn runs one SQL statement, a snapshot by itself, so no BEGIN/COMMIT is needed."""
        if self._closed:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        conn: sqlite3.Connection | None = getattr(self._thread_local, "conn", None)
        if conn is None:
            conn = self._connect_sync_reader()
            self._thread_local.conn = conn
        return fn(conn) if single_statement else _read_tx(conn, fn)

    def _connect_sync_reader(self) -> sqlite3.Connection:
        # check_same_thread=False only so that close() may close it from the loop's thread
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        for pragma in ("query_only=ON", f"busy_timeout={BUSY_TIMEOUT_MS}", "cache_size=-4000"):
            conn.execute(f"PRAGMA {pragma}")
        conn.set_trace_callback(self._trace)
        with self._sync_readers_lock:
            if self._closed:
                conn.close()
                raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
            self._sync_readers.append(conn)
        return conn

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run fn(conn) in a savepoint of the next group transaction; answer after COMMIT."""
        if self._closed or self._writer is None:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        return await self._writer._execute(self.write_sync, fn)  # type: ignore[no-any-return]

    def write_sync(self, fn: Callable[[sqlite3.Connection], T], barrier: Future[Any] | None = None) -> T:
        """`write()` for a worker thread (never the loop's: it blocks until the commit). With a barrier, the
        write's statements run while the barrier's work goes on, and the write commits only if it succeeds."""
        if self._closed:
            raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
        item = _PendingWrite(fn, barrier)
        with self._pending_lock:
            self._pending.append(item)
        with self._commit_lock:
            if not item.done:  # nobody took it along: lead a group transaction with everything pending
                if self._writer_gone:
                    raise OrthancError(ErrorCode.DatabaseUnavailable, "The index is closed")
                self._commit_pending()
        if not item.ok:
            raise item.value
        return item.value  # type: ignore[no-any-return]

    def _commit_pending(self) -> None:
        """Under the commit lock: one transaction for every pending write, each answered in its item."""
        with self._pending_lock:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not batch:
            return
        assert self._writer is not None
        try:
            with self._commit_turn:
                outcomes = _write_batch(self._writer._conn, batch, self._commit_turn)
        except BaseException as exc:  # the commit itself failed: every write of the batch failed
            logger.error("Index transaction failed: %s", exc)
            error = exc if isinstance(exc, OrthancError) else OrthancError(ErrorCode.Database, str(exc))
            outcomes = [(False, error)] * len(batch)
        self._commits += 1
        for b, (ok, value) in zip(batch, outcomes):
            b.ok, b.value, b.done = ok, value, True


def _checkpoint(conn: sqlite3.Connection) -> None:
    # PASSIVE: copies what no reader still needs, never waits for readers nor blocks the writer.
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _read_tx(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


def _write_batch(conn: sqlite3.Connection, writes: list[_PendingWrite], turn: threading.Lock) -> list[tuple[bool, Any]]:
    """One transaction for the whole batch, each write in a SAVEPOINT (a failing one rolls back alone)."""
    _begin(conn)
    if len(writes) == 1:  # alone: its transaction is its savepoint (two statements fewer per commit)
        return [_write_alone(conn, writes[0], turn)]
    outcomes: list[tuple[bool, Any]] = []
    try:
        for write in writes:
            conn.execute("SAVEPOINT w")
            try:
                value = write.fn(conn)
                if write.barrier is not None:
                    _wait_without_turn(write.barrier, turn)
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


def _begin(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE; retries BUSY with linear backoff plus jitter (one place, as Orthanc)."""
    for attempt in range(10):
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.05)
    raise OrthancError(ErrorCode.DatabaseCannotSerialize)


def _write_alone(conn: sqlite3.Connection, write: _PendingWrite, turn: threading.Lock) -> tuple[bool, Any]:
    """The only write of its transaction (begun): a failure rolls the transaction back, as its savepoint would."""
    try:
        value = write.fn(conn)
        if write.barrier is not None:
            _wait_without_turn(write.barrier, turn)
    except Exception as exc:
        conn.execute("ROLLBACK")
        return False, exc
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return True, value


def _wait_without_turn(barrier: Future[Any], turn: threading.Lock) -> None:
    """Wait for a barrier (raising its error) without keeping parsers waiting meanwhile."""
    if barrier.done():
        barrier.result()
        return
    turn.release()
    try:
        barrier.result()
    finally:
        turn.acquire()
