"""index/engine.py's group transaction: a failing write rolls back alone, in a batch or by itself."""

from __future__ import annotations

import sqlite3

import pytest

from orthanc_lite.index.engine import _PendingWrite, _write_batch


@pytest.fixture
def conn() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:", isolation_level=None)
    c.execute("CREATE TABLE t(v INTEGER UNIQUE)")
    return c


def _insert(v: int):  # type: ignore[no-untyped-def]
    return lambda c: c.execute("INSERT INTO t(v) VALUES (?)", (v,)).lastrowid


def _rows(conn: sqlite3.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT v FROM t ORDER BY v")]


def test_single_write_commits(conn: sqlite3.Connection) -> None:
    assert _write_batch(conn, [_PendingWrite(_insert(1))]) == [(True, 1)]
    assert _rows(conn) == [1] and not conn.in_transaction


def test_single_failing_write_leaves_nothing(conn: sqlite3.Connection) -> None:
    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t(v) VALUES (5)")
        raise ValueError("refused")

    [(ok, exc)] = _write_batch(conn, [_PendingWrite(bad)])
    assert not ok and isinstance(exc, ValueError)
    assert _rows(conn) == [] and not conn.in_transaction


def test_failing_write_in_a_batch_rolls_back_alone(conn: sqlite3.Connection) -> None:
    outcomes = _write_batch(conn, [_PendingWrite(_insert(1)), _PendingWrite(_insert(1)), _PendingWrite(_insert(2))])
    assert [ok for ok, _ in outcomes] == [True, False, True]
    assert _rows(conn) == [1, 2] and not conn.in_transaction
