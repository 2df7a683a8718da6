"""The meter store's schema versions: a store written before versions existed migrates without
losing a row, a newer store is refused untouched, and processes opening an old store at the same
moment migrate it once."""
from __future__ import annotations

import json
import multiprocessing
import sqlite3
import time
from datetime import datetime

import pytest

import appliance.store_schema as schema
from appliance.clock import JST
from appliance.interfaces import BreakerState
from appliance.store import Store
from appliance.store_schema import LATEST, StoreVersionError

# The schema exactly as written by the store before it had a version (user_version 0). A frozen copy on
# purpose: the test must still describe the old files in the field if the baseline step is ever edited.
UNVERSIONED_SCHEMA = """
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

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=JST).timestamp()
OLD_BREAKER = {"closed": False, "reason": "installer: meter exchange", "at": "2026-11-23T09:00:00+09:00",
               "override": True, "command_id": 3, "contact": None, "fitted": True, "contact_fault": False}
# The installer's queue as the previous code kept it: #3 applied (the service crashed before
# clearing the list), #4 still pending.
OLD_QUEUE = [
    {"id": 3, "action": "open", "reason": "meter exchange", "override": True, "at": "2026-11-23T08:59:00+09:00"},
    {"id": 4, "action": "release", "reason": "work done", "override": False, "at": "2026-11-23T09:01:00+09:00"},
]
BREAKER_KEYS = {"breaker_requests", "breaker_request_done", "breaker_request_id"}

ROWS = {
    "meta": [("seq", "2"), ("event_id", "7"), ("link", json.dumps({"connected": True})),
             ("breaker", json.dumps(OLD_BREAKER)), ("breaker_requests", json.dumps(OLD_QUEUE)),
             ("breaker_request_done", "3"), ("breaker_request_id", "4")],
    "readings": [(1, T0, T0 + 1800, "ok", json.dumps({"seq": 1, "energy_wh": 120})),
                 (2, T0 + 1800, T0 + 3600, "ok", json.dumps({"seq": 2, "energy_wh": 95}))],
    "contracts": [("A", "supply", "Power A", "mqtt://a", '["energy"]', 1800.0, "basic", T0, 1)],
    "changes": [(1, "supply", "contract", "A", "Power A", "mqtt://a", '["energy"]', "basic", 1800.0,
                 '"immediate"', "card", 5, T0, "done", T0, 1, "switched", "{}"),
                (2, "data", "contract", "D", "Data D", "mqtt://d", '["voltage"]', None, None,
                 '{"weekly": [{"day": "mon", "at": "22:00"}]}', "remote", 2, T0 + 60, "pending", None, 0, None,
                 '{"serial": 2}')],
    "outbox": [(1, "meters/M/readings", b'{"seq":2}', "A", T0 + 3600)],
    "entitlements": [(1, "A"), (2, "A")],
    "delivered": [("A", 1)],
    "alerts": [(1, T0, "link_lost", None, "link lost", "接続が切れました", "{}", None)],
    "company_serials": [("A", 5), ("D", 2)],
    "card_documents": [("A", "basic", "supply", 5, T0, "pcsc0", b"\xd2\x84signed")],
}


def write_unversioned_store(path) -> None:
    """A store as the code before schema versions left it, with rows in every table."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(UNVERSIONED_SCHEMA)
    for table, rows in ROWS.items():
        marks = ",".join("?" * len(rows[0]))
        db.executemany(f"INSERT INTO {table} VALUES({marks})", rows)
    db.commit()
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    db.close()


def table_rows(db: sqlite3.Connection, table: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]


def assert_migrated_without_loss(path) -> None:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        for table, rows in ROWS.items():
            if table == "meta":
                rows = [r for r in rows if r[0] not in BREAKER_KEYS]  # the queue moved to its own table
            if table == "alerts":
                rows = [r + (1,) for r in rows]  # step 3 added each alert's count: once
            if table in ("contracts", "changes"):
                rows = [r + (None,) for r in rows]  # step 6: no measure interval of their own (the base one)
            assert table_rows(db, table) == rows, table
        # only the pending request moved, with its id (the relay's command_id) and its time
        assert table_rows(db, "breaker_requests") == [
            (4, "release", "work done", 0, datetime.fromisoformat("2026-11-23T09:01:00+09:00").timestamp(), None, None,
             "installer")]  # step 5: every earlier request was the installer's
    finally:
        db.close()


def test_a_store_written_before_schema_versions_migrates_without_losing_a_row(tmp_path):
    path = tmp_path / "meter.sqlite3"
    write_unversioned_store(path)
    store = Store(path)
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert [r["seq"] for r in store.readings()] == [1, 2]
        assert [c.company.code for c in store.contracts()] == ["A"]
        assert [ch.id for ch, _ in store.changes()] == [2]
        assert store.stored_cards()[0].document == b"\xd2\x84signed"
        assert store.breaker_state() == BreakerState.from_json(OLD_BREAKER)
        pending, = store.pending_breaker_requests()
        assert (pending.id, pending.action, pending.reason, pending.override) == (4, "release", "work done", False)
        # a new request continues after the old counter: the relay refuses ids it has seen
        assert store.add_breaker_request("close", "power back", False, datetime.fromtimestamp(T0, JST)) == 5
        store.db.execute("DELETE FROM breaker_requests WHERE id=5")
    finally:
        store.close()
    assert_migrated_without_loss(path)
    Store(path).close()  # opening a current store changes nothing
    assert_migrated_without_loss(path)


def test_an_empty_file_becomes_a_store_at_the_latest_version(tmp_path):
    path = tmp_path / "meter.sqlite3"
    path.touch()
    store = Store(path)
    try:
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == LATEST
        assert store.pending_breaker_requests() == [] and store.breaker_state() is None
        assert store.add_breaker_request("open", "test", True, datetime.fromtimestamp(T0, JST)) == 1
    finally:
        store.close()


def test_a_store_newer_than_the_code_is_refused_untouched(tmp_path, capsys):
    path = tmp_path / "meter.sqlite3"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={LATEST + 1}")
    db.execute("CREATE TABLE from_the_future (x)")
    db.close()
    with pytest.raises(StoreVersionError) as refused:
        Store(path)
    message = str(refused.value)
    assert str(path) in message and f"version {LATEST + 1}" in message and f"version {LATEST}" in message
    assert "downgrade" in message
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST + 1
    db.close()
    # the CLI says so in one line, no traceback
    from smartmeter.cli import main

    config = tmp_path / "meter.toml"
    config.write_text(f'[meter]\nid = "MTR-V1"\nstore = "{path}"\n')
    assert main(["appliance", "breaker", "status", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smartmeter: error: ") and "downgrade" in err and "Traceback" not in err


def test_a_failing_step_leaves_the_store_at_the_version_before_it(tmp_path, monkeypatch):
    path = tmp_path / "meter.sqlite3"
    write_unversioned_store(path)

    def broken(db):
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(schema, "MIGRATIONS", (schema.MIGRATIONS[0], broken))
    with pytest.raises(RuntimeError):
        Store(path)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1  # step 1 committed, step 2 rolled back
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name='half_done'").fetchone()[0] == 0
    assert json.loads(db.execute("SELECT value FROM meta WHERE key='breaker_requests'").fetchone()[0]) == OLD_QUEUE
    db.close()
    monkeypatch.undo()
    Store(path).close()
    assert_migrated_without_loss(path)


def _open_at_once(path: str, start, results) -> None:
    """One process opening the store; every step is slowed so that the openers overlap in it."""
    steps = schema.MIGRATIONS

    def slowed(step):
        def run(db):
            time.sleep(0.3)
            step(db)
        return run

    schema.MIGRATIONS = tuple(slowed(s) for s in steps)
    start.wait()
    try:
        store = Store(path)
        results.put(("ok", store.db.execute("PRAGMA user_version").fetchone()[0]))
        store.close()
    except BaseException as exc:  # reported to the test, which fails on it
        results.put(("error", repr(exc)))


def test_processes_opening_an_old_store_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "meter.sqlite3"
    write_unversioned_store(path)
    ctx = multiprocessing.get_context("spawn")
    openers = 4
    start, results = ctx.Barrier(openers), ctx.Queue()
    procs = [ctx.Process(target=_open_at_once, args=(str(path), start, results)) for _ in range(openers)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    assert outcomes == [("ok", LATEST)] * openers
    assert_migrated_without_loss(path)  # the pending request moved once, nothing lost
