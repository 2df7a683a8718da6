"""One storage interface for the outage pipeline, SQLite (default) or PostgreSQL.

``open_storage("sqlite:///outage.db")`` or ``open_storage("postgresql://user@host/db")``.
"""
from __future__ import annotations

import os

from .base import Storage
from .migrations import SchemaTooNew
from .partitions import Retention

DEFAULT_URL = "sqlite:///outage.db"


def default_url() -> str:
    return os.environ.get("SMARTMETER_OUTAGE_DB", DEFAULT_URL)


def open_storage(url: str | None = None, retention: Retention | None = None) -> Storage:
    """``retention``: how many days of readings PostgreSQL keeps in its day partitions (default a week)."""
    url = url or default_url()
    if url.startswith("sqlite://"):
        from .sqlite import SqliteBackend

        # sqlite:///relative.db, sqlite:////absolute/path.db (the SQLAlchemy convention)
        return Storage(SqliteBackend(url.removeprefix("sqlite:///")), retention)
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresBackend

        return Storage(PostgresBackend(url), retention)
    raise ValueError(f"unknown storage URL {url!r}: use sqlite:///PATH or postgresql://...")


__all__ = ["DEFAULT_URL", "Retention", "SchemaTooNew", "Storage", "default_url", "open_storage"]
