"""One database connection, its transactions, and the SQL compiled for its dialect by SQLAlchemy Core.

The SQL is written once, with named binds (``text()``) or Core expressions; SQLAlchemy renders it
for SQLite or PostgreSQL (paramstyle, ``IN`` lists, ``FOR UPDATE SKIP LOCKED``, identity columns).
A backend (:mod:`.sqlite`, :mod:`.postgres`) supplies only what SQL cannot say the same way on both:
how to connect, how a writing transaction begins, and how to serialize one kind of transaction.
Times are epoch seconds.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    CursorResult,
    Engine,
    Executable,
    TextClause,
    bindparam,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class Backend(Protocol):
    url: str  # how another process opens the same database
    begin: str  # the statement that starts a writing transaction

    def engine(self) -> Engine:
        """An engine whose connections are in autocommit mode: transactions are explicit, reads hold no snapshot."""

    def serialize(self, conn: Connection, key: int) -> None:
        """Inside a transaction: wait until no other transaction that serialized on ``key`` runs."""


def statement(sql: str, *expanding: str) -> TextClause:
    """SQL with named binds; each name in ``expanding`` binds a list (``WHERE x IN :name``)."""
    return text(sql).bindparams(*(bindparam(name, expanding=True) for name in expanding))


def chunks(values: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Bounded ``IN`` lists: SQLite limits the number of binds in one statement."""
    for i in range(0, len(values), size):
        yield values[i : i + size]


class Database:
    """One connection per instance behind a lock (thread-safe); processes share the database itself."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.RLock()
        self._depth = 0
        self._bulk_sql: dict[TextClause, str] = {}
        self._in_sql: dict[tuple[TextClause, int], str] = {}  # at most one entry per list length up to the chunk
        self._engine = backend.engine()
        self._conn = self._engine.connect()

    @property
    def url(self) -> str:
        """How another process opens the same database."""
        return self._backend.url

    @property
    def display_url(self) -> str:
        """The URL without its password, for messages."""
        try:
            return make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError:
            return self.url.split("://")[0] + "://..."

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._engine.dispose()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit; nested uses join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            # SQLAlchemy leaves an autocommit connection's transactions to us: they go straight to the
            # driver, which saves a statement's worth of overhead on every short write (a notifier's receipt)
            driver = self._conn.connection.driver_connection
            driver.execute(self._backend.begin)
            self._depth = 1
            try:
                yield
                driver.execute("COMMIT")
            except BaseException:
                with suppress(self._engine.dialect.loaded_dbapi.Error):  # a failed COMMIT already ended it
                    driver.execute("ROLLBACK")
                raise
            finally:
                self._depth = 0

    def serialize(self, key: int) -> None:
        """Inside a transaction: make this the only one running among those that serialize on ``key``."""
        self._backend.serialize(self._conn, key)

    @contextmanager
    def driver_connection(self) -> Iterator[Any]:
        """The DBAPI connection (sqlite3 or psycopg), for what SQL text cannot do fast (PostgreSQL COPY)."""
        with self._lock:
            yield self._conn.connection.driver_connection

    # ----- statements
    def _execute(self, sql: str | Executable, params: Mapping[str, Any] | None = None) -> CursorResult:
        """Run one statement (SQL text or a Core construct) and return its result."""
        with self._lock:
            return self._conn.execute(text(sql) if isinstance(sql, str) else sql, params or {})

    def _executemany(self, sql: TextClause, rows: Sequence[Sequence[Any]]) -> int:
        """Run one statement per row, rows given positionally in the order the binds appear in the SQL;
        return the number of rows changed.

        The hot path of ingest: SQLAlchemy compiles the statement once for this dialect, and the rows go
        to the driver's ``executemany`` as they are, with no per-row parameter processing."""
        if not rows:
            return 0
        with self._lock:
            return self._conn.exec_driver_sql(self._compiled(sql), list(rows)).rowcount

    def _compiled(self, sql: TextClause) -> str:
        found = self._bulk_sql.get(sql)
        if found is None:
            compiled = sql.compile(dialect=self._engine.dialect)
            names = compiled.positiontup
            if names is None:
                raise TypeError("rows run per row need a positional paramstyle (qmark, format)")
            if len(set(names)) != len(names):
                raise ValueError(f"a statement run per row names each bind once: {sql}")
            found = self._bulk_sql[sql] = str(compiled)
        return found

    def _query(self, sql: str | Executable, params: Mapping[str, Any] | None = None) -> list[Any]:
        with self._lock:
            return list(self._execute(sql, params).all())

    def _rows(self, sql: TextClause, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """A query's rows as plain tuples straight from the driver: for the hot read of every tick, where
        building SQLAlchemy rows costs more than the query. Binds given positionally, as for ``_executemany``."""
        return self._driver_rows(self._compiled(sql), params)

    def _rows_in(self, sql: TextClause, values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of a query whose one bind is an ``IN`` list (:func:`statement`'s ``expanding``), in
        bounded lists, straight from the driver: SQLAlchemy renders an expanding bind value by value on
        every call, which cost the collector's flush more than the look-up. Compiled once per list length."""
        out: list[tuple[Any, ...]] = []
        for chunk in chunks(values):
            out += self._driver_rows(self._expanded(sql, len(chunk)), chunk)
        return out

    def _expanded(self, sql: TextClause, n: int) -> str:
        found = self._in_sql.get((sql, n))
        if found is None:
            [name] = sql._bindparams  # one bind: the list
            compiled = sql.bindparams(**{name: [None] * n}).compile(
                dialect=self._engine.dialect, compile_kwargs={"render_postcompile": True})
            if compiled.positiontup is None:
                raise TypeError("an IN list straight to the driver needs a positional paramstyle (qmark, format)")
            found = self._in_sql[(sql, n)] = str(compiled)
        return found

    def _driver_rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._conn.connection.driver_connection.cursor()
            try:
                cursor.execute(sql, tuple(params))
                return [tuple(r) for r in cursor.fetchall()]
            finally:
                cursor.close()

    def _scalar(self, sql: str | Executable, params: Mapping[str, Any] | None = None) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None
