"""PostgreSQL backend (psycopg 3): for production and for several handler processes on several hosts."""
from __future__ import annotations

import psycopg
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.pool import NullPool

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")  # released at COMMIT/ROLLBACK


class PostgresBackend:
    begin = "BEGIN"

    def __init__(self, url: str) -> None:
        self.url = url

    def engine(self) -> Engine:
        # libpq reads the URL itself, as `psql` would; "format" (%s) is positional, so rows go to
        # executemany as tuples
        return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(self.url), poolclass=NullPool,
                             isolation_level="AUTOCOMMIT", paramstyle="format")

    def serialize(self, conn: Connection, key: int) -> None:
        conn.execute(_ADVISORY_LOCK, {"key": key})
