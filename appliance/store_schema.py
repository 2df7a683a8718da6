"""The meter store's schema, as ordered migration steps keyed by ``PRAGMA user_version``.

Step N takes the store from version N-1 to N and runs in one transaction together with the
version bump, so a crash leaves the store at N-1 or N, never between. A step, once released, is
never edited: a change to the schema is a new step at the end of :data:`MIGRATIONS`.

The service, the CLI and the touch screen open the same file, possibly at the same moment: each
step starts with ``BEGIN IMMEDIATE`` (the write lock) and reads the version again under it, so two
openers never both run a step. A store newer than this code (a downgrade) is refused, untouched.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Callable

from .errors import MeterError

# Version 1: the tables as they were before the store had a version (user_version 0). Every
# statement says IF NOT EXISTS, so the step accepts an empty file and such a store alike.
BASELINE = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY,
    interval_start REAL NOT NULL,
    interval_end REAL NOT NULL,
    quality TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_end ON readings(interval_end);
CREATE TABLE IF NOT EXISTS contracts (
    company_code TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    server TEXT NOT NULL,
    data_types TEXT NOT NULL,
    send_interval REAL NOT NULL,
    menu TEXT,
    since REAL,
    change_id INTEGER
);
CREATE TABLE IF NOT EXISTS changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    company_code TEXT NOT NULL,
    company_name TEXT NOT NULL,
    server TEXT NOT NULL,
    data_types TEXT NOT NULL,
    menu TEXT,
    send_interval REAL,
    switch TEXT NOT NULL,
    source TEXT NOT NULL,
    serial INTEGER,
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | done | cancelled | void
    last_applied REAL,                       -- the last occurrence applied (weekly rules recur)
    applied_count INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    document TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    company_code TEXT,
    release_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS entitlements (
    seq INTEGER NOT NULL,
    company_code TEXT NOT NULL,
    PRIMARY KEY (seq, company_code)
);
CREATE TABLE IF NOT EXISTS delivered (
    company_code TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,            -- security_error | card_rejected | link_lost | ...
    company_code TEXT,
    message TEXT NOT NULL,         -- English
    message_ja TEXT NOT NULL,      -- Japanese, for the household display
    detail TEXT NOT NULL DEFAULT '{}',
    cleared REAL
);
CREATE TABLE IF NOT EXISTS company_serials (
    company_code TEXT PRIMARY KEY,
    serial INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS card_documents (   -- contract data read from cards (the Fig. 9(b) list)
    company_code TEXT NOT NULL,
    menu TEXT NOT NULL DEFAULT '',             -- '' for none: NULLs would never collide in the key
    kind TEXT NOT NULL,                        -- supply | data
    serial INTEGER NOT NULL,
    read_at REAL NOT NULL,
    slot TEXT NOT NULL,
    document BLOB NOT NULL,                    -- the signed COSE_Sign1 exactly as read from the card
    PRIMARY KEY (company_code, menu)
);
"""

BREAKER_REQUESTS = """
CREATE TABLE breaker_requests (                -- the installer's requests, applied by the service
    id INTEGER PRIMARY KEY AUTOINCREMENT,      -- also the relay's command_id: never reused
    action TEXT NOT NULL,                      -- open | close | release
    reason TEXT NOT NULL,
    override INTEGER NOT NULL DEFAULT 0,
    requested_at REAL NOT NULL,
    applied_at REAL,                           -- NULL while pending
    outcome TEXT                               -- applied | refused | replayed
);
CREATE INDEX breaker_requests_pending ON breaker_requests(id) WHERE applied_at IS NULL;
"""

ALERT_COUNTS = """
ALTER TABLE alerts ADD COLUMN count INTEGER NOT NULL DEFAULT 1;   -- alerts coalesced into this row
CREATE INDEX alerts_recent ON alerts(kind, company_code, at);
"""

# The meta keys that were the breaker's request queue before it had a table.
_OLD_QUEUE, _OLD_DONE, _OLD_COUNTER = "breaker_requests", "breaker_request_done", "breaker_request_id"


class StoreVersionError(MeterError):
    """The store was written by newer software than this one."""


def _run(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: ``executescript`` would commit the open transaction first."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            db.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement in a migration step: {pending.strip()[:60]}")


def _meta(db: sqlite3.Connection, key: str, default=None):
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def _epoch(iso: object) -> float:
    try:
        return datetime.fromisoformat(str(iso)).timestamp()
    except ValueError:
        return 0.0  # never written without a time; 0 only marks "unknown" on a damaged entry


def step_1_baseline(db: sqlite3.Connection) -> None:
    _run(db, BASELINE)


def step_2_breaker_requests(db: sqlite3.Connection) -> None:
    """The breaker's requests move from a JSON list in meta to a table of their own.

    Requests at or below ``breaker_request_done`` were applied (the old code cleared the list
    after applying): only the others move. Ids are kept, and the table's id sequence starts
    after the old counter, because the relay refuses a command_id at or below one it applied."""
    _run(db, BREAKER_REQUESTS)
    done = int(_meta(db, _OLD_DONE, 0) or 0)
    queue = _meta(db, _OLD_QUEUE, []) or []
    moved = [r for r in queue if isinstance(r, dict) and int(r.get("id", 0)) > done]
    db.executemany(
        "INSERT INTO breaker_requests(id, action, reason, override, requested_at) VALUES(?,?,?,?,?)",
        [(int(r["id"]), str(r["action"]), str(r.get("reason") or ""), int(bool(r.get("override"))),
          _epoch(r.get("at"))) for r in moved])
    last = max([int(_meta(db, _OLD_COUNTER, 0) or 0), done] + [int(r["id"]) for r in moved])
    if last:
        db.execute("DELETE FROM sqlite_sequence WHERE name='breaker_requests'")
        db.execute("INSERT INTO sqlite_sequence(name, seq) VALUES('breaker_requests', ?)", (last,))
    db.execute("DELETE FROM meta WHERE key IN (?,?,?)", (_OLD_QUEUE, _OLD_DONE, _OLD_COUNTER))


def step_3_alert_counts(db: sqlite3.Connection) -> None:
    """Alerts of one kind and company within a minute share a row and count up (a flood of junk
    commands must not write a row each)."""
    _run(db, ALERT_COUNTS)


def step_4_outbox_topic_order(db: sqlite3.Connection) -> None:
    """An index for the pump's rule that no row passes an earlier one of its topic (see Store.released)."""
    db.execute("CREATE INDEX IF NOT EXISTS outbox_topic ON outbox(topic, id)")


def step_5_breaker_request_source(db: sqlite3.Connection) -> None:
    """Who asked for a breaker operation: the installer on site, or the grid operator by a signed
    ``breaker`` command (``grid:{code}``); earlier rows were all the installer's."""
    db.execute("ALTER TABLE breaker_requests ADD COLUMN source TEXT NOT NULL DEFAULT 'installer'")


def step_6_measure_intervals(db: sqlite3.Connection) -> None:
    """A contract's own measurement interval (56A), on the contracts in force and the pending changes;
    NULL (every earlier row) is the meter's base interval."""
    db.execute("ALTER TABLE contracts ADD COLUMN measure_interval REAL")
    db.execute("ALTER TABLE changes ADD COLUMN measure_interval REAL")


MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    step_1_baseline,
    step_2_breaker_requests,
    step_3_alert_counts,
    step_4_outbox_topic_order,
    step_5_breaker_request_source,
    step_6_measure_intervals,
)
LATEST = len(MIGRATIONS)


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection, path: Path | str) -> int:
    """Bring the store on ``db`` (autocommit mode) to :data:`LATEST`; returns that version."""
    if version_of(db) == LATEST:
        return LATEST  # the usual open: no write lock taken
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = version_of(db)
            if version > LATEST:
                raise StoreVersionError(
                    f"{path}: the store is at schema version {version}, but this software knows only up to "
                    f"version {LATEST}; refusing to open it (a downgrade): run the newer software, or "
                    f"restore a backup made by this version")
            if version == LATEST:
                db.execute("COMMIT")
                return version
            MIGRATIONS[version](db)  # step version+1
            db.execute(f"PRAGMA user_version={version + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
