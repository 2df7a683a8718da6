"""SQLite backend: the embedded, zero set-up default. WAL lets readers run beside the one writer."""
from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .base import Storage


class SqliteStorage(Storage):
    serial = "INTEGER PRIMARY KEY AUTOINCREMENT"
    lock_rows = ""  # BEGIN IMMEDIATE already makes the claiming transaction the only writer

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE), never implicit
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast commits
        self._conn.execute("PRAGMA busy_timeout=60000")
        self.create_schema()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _commit(self) -> None:
        self._conn.execute("COMMIT")

    def _rollback(self) -> None:
        self._conn.execute("ROLLBACK")

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(params))

    def _executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        return self._conn.executemany(sql, rows).rowcount

    def close(self) -> None:
        self._conn.close()
