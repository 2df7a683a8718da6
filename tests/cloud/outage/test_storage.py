"""The storage interface behaves the same on SQLite and PostgreSQL."""
from __future__ import annotations

from datetime import timedelta

from cloud.outage.model import Area, Event, MeterState, NotificationState, Reading, Registration, StatusEvent
from cloud.outage.storage import open_storage

AREA = Area("広島県", "広島市中区", "基町")


def reading(meter: str, seq: int, end, **extra) -> Reading:
    return Reading(meter, seq, end - timedelta(minutes=30), end, {"meter_id": meter, "seq": seq, **extra})


def test_readings_are_deduplicated_on_meter_and_seq(storage, day_clock):
    end = day_clock.now()
    assert storage.store_readings([reading("m1", 1, end), reading("m2", 1, end)], day_clock.now()) == 2
    # a redelivery and one new reading: only the new one counts
    assert storage.store_readings([reading("m1", 1, end), reading("m1", 2, end + timedelta(minutes=30))], day_clock.now()) == 1
    assert storage.reading_keys() == [("m1", 1), ("m1", 2), ("m2", 1)]
    assert storage.meter_comm("m1").last_interval_end == end + timedelta(minutes=30)


def test_an_older_reading_never_moves_last_seen_back(storage, day_clock):
    end = day_clock.now()
    storage.store_readings([reading("m1", 5, end)], end)
    storage.store_readings([reading("m1", 4, end - timedelta(minutes=30))], end)
    assert storage.meter_comm("m1").last_interval_end == end


def test_status_keeps_the_newest_by_the_meters_time(storage, day_clock):
    t = day_clock.now()
    storage.store_statuses([StatusEvent("m1", MeterState.POWER_FAIL, t)], t)
    storage.store_statuses([StatusEvent("m1", MeterState.ONLINE, t - timedelta(days=1))], t)  # a retained replay
    comm = storage.meter_comm("m1")
    assert comm.status is MeterState.POWER_FAIL and comm.status_at == t


def test_no_communication_list(storage, day_clock):
    end = day_clock.now()
    storage.store_readings([reading("m1", 1, end), reading("m2", 1, end - timedelta(minutes=30))], end)
    storage.store_statuses([StatusEvent("m1", MeterState.POWER_FAIL, end + timedelta(minutes=1))], end)
    assert sorted(storage.no_communication(end)) == ["m1", "m2"]
    storage.store_readings([reading("m1", 2, end + timedelta(minutes=30))], end)
    assert storage.no_communication(end) == ["m2"]


def test_registrations_round_trip_and_unsubscribe(storage):
    r = Registration("m1", "C-1", AREA, "conc-1", email="a@example.jp", name="山田 太郎")
    storage.upsert_registrations([r, Registration("m2", "C-2", AREA, "conc-2")])
    assert storage.registration("m1") == r
    assert storage.area_sizes([AREA.key]) == {AREA.key: 2}
    assert storage.concentrators_of_areas([AREA.key]) == {AREA.key: {"conc-1": ["m1"], "conc-2": ["m2"]}}
    assert storage.set_unsubscribed("m1")
    assert storage.registration("m1").reachable is False


def test_notification_keys_are_unique_and_claims_exclusive(storage_url, day_clock):
    a, b = open_storage(storage_url), open_storage(storage_url)  # two notifier processes' connections
    now = day_clock.now()
    item = ("o1|m1|declared", Event.DECLARED, "m1", 1, True, now, {})
    assert a.add_notifications([item], now) == 1
    assert b.add_notifications([item], now) == 0  # the same event again: kept once
    a.add_notifications([("o1|m2|declared", Event.DECLARED, "m2", 1, True, now, {})], now)
    got_a = a.claim_notifications("A", now, 60, 1, False)
    got_b = b.claim_notifications("B", now, 60, 10, False)
    assert len(got_a) == 1 and len(got_b) == 1 and got_a[0].key != got_b[0].key
    assert a.claim_notifications("A", now, 60, 10, False) == []
    # B may not finish A's claim; after A's lease ends someone else may take it again
    assert not b.finish_notification(got_a[0].id, "B", NotificationState.SENT, now)
    assert b.finish_notification(got_b[0].id, "B", NotificationState.SENT, now)
    later = now + timedelta(seconds=61)
    again = b.claim_notifications("B", later, 60, 10, False)
    assert [n.key for n in again] == [got_a[0].key] and again[0].attempts == 2
    assert b.finish_notification(again[0].id, "B", NotificationState.SENT, later)
    a.close(), b.close()


def test_the_driver_connection_bulk_loads_inside_a_transaction(storage, day_clock):
    """The hook for bulk loads the SQL layer cannot do fast (PostgreSQL COPY); rows land in the same transaction."""
    end = day_clock.now().timestamp()
    rows = [("m1", 1, end - 1800, end, "{}", end), ("m2", 1, end - 1800, end, "{}", end)]
    storage.ensure_partitions(day_clock.now())  # PostgreSQL: a raw load finds its day's partition made
    with storage.transaction(), storage.driver_connection() as raw:
        if storage.dialect == "postgresql":
            with raw.cursor().copy("COPY readings (meter_id, seq, interval_start, interval_end, payload, received_at) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            raw.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?)", rows)
    assert storage.reading_keys() == [("m1", 1), ("m2", 1)]
