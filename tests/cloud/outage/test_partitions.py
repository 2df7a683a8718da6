"""Readings on PostgreSQL: one statement per batch, day partitions, retention, and the move of an
unpartitioned table (schema step 8)."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from appliance.clock import from_epoch, iso
from cloud.outage.collector import Collector
from cloud.outage.model import Reading
from cloud.outage.storage import open_storage
from cloud.outage.storage.database import Database, statement
from cloud.outage.storage.migrations import STEPS, migrate
from cloud.outage.storage.partitions import Retention
from cloud.outage.storage.postgres import PostgresBackend
from cloud.outage.storage.readings import OutsidePartitions

PERIOD = timedelta(minutes=30)


def reading(meter: str, seq: int, end) -> Reading:
    return Reading(meter, seq, end - PERIOD, end, {"meter_id": meter, "seq": seq})


@pytest.fixture
def pg(postgres):
    s = open_storage(postgres.create_database())
    yield s
    s.close()


def test_a_batch_counts_new_readings_and_redeliveries_as_duplicates(pg, day_clock):
    end = day_clock.now()
    first = [reading(f"m{i}", 1, end) for i in range(30)] + [reading("m0", 1, end)]  # a duplicate inside the batch
    assert pg.store_readings(first, end) == 30
    again = [reading("m0", 1, end), reading("m1", 2, end + PERIOD), reading("m1", 0, end - PERIOD)]
    assert pg.store_readings(again, end + PERIOD) == 2  # m0/1 redelivered in a later batch: a duplicate
    assert pg.reading_count() == 32
    assert pg.reading_keys("m1") == [("m1", 0), ("m1", 1), ("m1", 2)]
    comm = pg.meter_comm("m1")
    assert comm.last_interval_end == end + PERIOD and comm.reading_rx_at == end + PERIOD  # the newest end, once
    odd = Reading("x9", 1, end - timedelta(seconds=1799.123456789), end, '{"note": "停電 \\ \\"q\\" \\u0000"}')
    assert pg.store_readings([odd], end) == 1
    assert pg._query(text("SELECT interval_start, payload FROM readings WHERE meter_id = 'x9'")) == [
        (odd.interval_start.timestamp(), odd.payload)]  # text and times arrive exactly as sent


def test_a_reading_past_midnight_goes_to_its_own_day_and_still_dedupes(pg, day_clock):
    midnight = day_clock.now().replace(hour=0) + timedelta(days=1)
    batch = [reading("m1", 1, midnight - PERIOD), reading("m1", 2, midnight), reading("m1", 3, midnight + PERIOD)]
    assert pg.store_readings(batch, midnight) == 3
    assert pg.store_readings(batch, midnight + PERIOD) == 0
    today = day_clock.now().date()
    assert {today, today + timedelta(days=1)} <= set(pg.reading_partitions())
    # JST midnight belongs to the day it starts: the 00:00 interval end is the next day's first reading
    rows = pg._query(text("SELECT tableoid::regclass::text, seq FROM readings ORDER BY seq"))
    assert [r[0] for r in rows] == [f"readings_{today:%Y%m%d}"] + [f"readings_{today + timedelta(days=1):%Y%m%d}"] * 2


def test_a_reading_outside_the_kept_days_is_refused_whole_and_nothing_is_written(pg, day_clock):
    now = day_clock.now()
    for end in (now - timedelta(days=30), now + timedelta(days=30)):
        with pytest.raises(OutsidePartitions, match="interval_end"):
            pg.store_readings([reading("m1", 1, now), reading("m2", 1, end)], now)
    assert pg.reading_count() == 0


def test_the_collector_sets_an_old_reading_aside_as_a_dead_letter(pg, day_clock):
    c = Collector(pg, day_clock)
    now = day_clock.now()
    for seq, end in ((1, now - timedelta(days=30)), (2, now)):
        body = {"meter_id": "m1", "seq": seq, "interval_start": iso(end - PERIOD), "interval_end": iso(end),
                "power_w": 420.0, "energy_wh": 210.0}
        c.handle("meters/m1/interval", json.dumps(body).encode())
    assert c.flush() == 1
    assert pg.reading_keys() == [("m1", 2)]
    (letter,) = pg.dead_letters()
    assert letter.reason == "interval_end older than the readings kept" and json.loads(letter.excerpt)["seq"] == 1


def test_retention_drops_old_days_whole_and_keeps_recent_ones(postgres, day_clock):
    s = open_storage(postgres.create_database(), retention=Retention(keep_days=2, ahead_days=1))
    try:
        now = day_clock.now()
        for days_ago in range(4):
            end = now - timedelta(days=days_ago)
            s.store_readings([reading("m1", 100 - days_ago, end)], end)
        s.ensure_partitions(now)
        today = now.date()
        dropped = s.drop_old_partitions(now)
        assert dropped == [today - timedelta(days=3)]
        assert s.reading_partitions() == [today + timedelta(days=d) for d in range(-2, 2)]
        assert s.reading_keys() == [("m1", 98), ("m1", 99), ("m1", 100)]
        assert s.drop_old_partitions(now) == []
    finally:
        s.close()


def test_sqlite_keeps_one_table_and_drops_nothing(tmp_path, day_clock):
    s = open_storage(f"sqlite:///{tmp_path / 'outage.db'}")
    try:
        old = day_clock.now() - timedelta(days=400)
        assert s.store_readings([reading("m1", 1, old)], day_clock.now()) == 1
        assert s.ensure_partitions(day_clock.now()) == [] and s.drop_old_partitions(day_clock.now()) == []
        assert s.reading_count() == 1
    finally:
        s.close()


def test_step_8_moves_every_row_of_an_unpartitioned_table(postgres, day_clock):
    url = postgres.create_database()
    old = Database(PostgresBackend(url))
    try:
        migrate(old, STEPS[:7])  # the schema before partitions
        now = day_clock.now()
        rows = [(f"m{i}", i * 10 + d, (now - timedelta(days=d)).timestamp() - 1800, (now - timedelta(days=d)).timestamp(), "{}",
                 now.timestamp()) for i in range(50) for d in range(3)]
        with old.transaction():
            old._executemany(statement("INSERT INTO readings VALUES (:a, :b, :c, :d, :e, :f)"), rows)
        before = old._query(text("SELECT * FROM readings ORDER BY meter_id, seq"))
    finally:
        old.close()
    s = open_storage(url)
    try:
        assert s._query(text("SELECT * FROM readings ORDER BY meter_id, seq")) == before
        assert s.reading_partitions() == [now.date() - timedelta(days=d) for d in (2, 1, 0)]
        assert len(before) == 150
        m7 = next(r for r in before if r[0] == "m7")  # redelivered after the move: still a duplicate
        assert s.store_readings([reading("m7", m7[1], from_epoch(m7[3]))], now) == 0
    finally:
        s.close()
