"""SQLite backend: the embedded, zero set-up default. WAL lets readers run beside the one writer."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool


class SqliteBackend:
    # a writing transaction takes the write lock at once, so it never fails to upgrade a read lock later;
    # it also makes the transaction the only writer, which is what claims and judging need
    begin = "BEGIN IMMEDIATE"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        _switch_to_wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast commits
        conn.execute("PRAGMA busy_timeout=60000")
        return conn

    def engine(self) -> Engine:
        return create_engine(URL.create("sqlite", database=self.path), creator=self._connect, poolclass=NullPool,
                             isolation_level="AUTOCOMMIT")

    def serialize(self, conn: Connection, key: int) -> None:
        """BEGIN IMMEDIATE already made this transaction the only writer."""


WAL_ATTEMPTS = 1200  # 60 s at 50 ms, as long as the busy timeout


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """WAL is recorded in the file, so only the first opener of a new database switches it. SQLite answers
    "busy" at once, without waiting as busy_timeout would, while another opener holds a lock on the same new
    file (handlers starting together): wait here instead."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if e.sqlite_errorcode != sqlite3.SQLITE_BUSY or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
