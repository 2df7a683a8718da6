"""What a hostile or broken sender can do to the collector: nothing lasting. Each case was seen."""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

import pytest
from polling import wait_for as wait_until

from appliance.clock import iso
from cloud.outage.collector import Collector, IntakeConfig
from cloud.outage.evidence import judge
from cloud.outage.model import MeterComm, MeterState
from cloud.mqtt import disconnect, make_client, start_subscriber

PERIOD = timedelta(minutes=30)


def reading(meter: str, seq: int, end, **extra) -> bytes:
    return json.dumps({"meter_id": meter, "seq": seq, "interval_start": iso(end - PERIOD), "interval_end": iso(end),
                       "power_w": 420.0, **extra}).encode()


def status(state: str, at) -> bytes:
    return json.dumps({"state": state, "at": iso(at) if not isinstance(at, str) else at}).encode()


@pytest.fixture
def collector(storage, day_clock):
    return Collector(storage, day_clock)


def test_a_seq_beyond_2_63_is_a_dead_letter_and_the_stream_goes_on(collector, storage, day_clock):
    end = day_clock.now()
    collector.handle("meters/ANY/interval", reading("ANY", 2**63, end))
    collector.handle("meters/m1/interval", reading("m1", 1, end))
    collector.flush()
    assert storage.reading_keys() == [("m1", 1)]
    [letter] = storage.dead_letters()
    assert (letter.topic, letter.reason) == ("meters/ANY/interval", "invalid seq") and "9223372036854775808" in letter.excerpt


def test_a_batch_the_database_refuses_is_stored_row_by_row(collector, storage, day_clock, monkeypatch):
    real = storage.store_readings

    def picky(readings, now):
        if any(r.meter_id == "poison" for r in readings):
            raise OverflowError("a row the database cannot take")
        return real(readings, now)

    monkeypatch.setattr(storage, "store_readings", picky)
    end = day_clock.now()
    for m in ("m1", "poison", "m2"):
        collector.handle(f"meters/{m}/interval", reading(m, 1, end))
    assert collector.flush() == 2
    assert storage.reading_keys() == [("m1", 1), ("m2", 1)]
    [letter] = storage.dead_letters()
    assert letter.reason == "storage refused" and json.loads(letter.excerpt)["meter_id"] == "poison"  # whole, to replay
    assert collector.pending() == ([], [])  # nothing kept for a next flush that would fail again


def test_dead_letters_are_pruned_by_age_and_capped(storage, day_clock):
    from cloud.outage.storage.dead_letters import DeadLetter

    now = day_clock.now()
    storage.add_dead_letters([DeadLetter("t", "old", "x", now - timedelta(days=40))] +
                             [DeadLetter("t", f"r{i}", "x", now) for i in range(10)])
    storage.prune_dead_letters(now, keep_for=timedelta(days=30), cap=4)
    assert [d.reason for d in storage.dead_letters()] == ["r9", "r8", "r7", "r6"]


def test_a_forged_future_last_gasp_is_refused_and_a_future_reading_blinds_nothing(collector, storage, day_clock):
    now = day_clock.now()
    collector.handle("meters/m1/interval", reading("m1", 1, now))
    collector.handle("meters/m1/status", status("power_fail", "2099-01-01T00:00:00+00:00"))
    collector.handle("meters/m2/interval", reading("m2", 1, now.replace(year=2099)))
    collector.handle("meters/m2/interval", reading("m2", 2, now))
    collector.flush()
    assert storage.meter_comm("m1").status is None
    assert collector.stats.malformed == {"at in the future": 1, "interval_start in the future": 1}
    day_clock.advance(timedelta(seconds=30))  # m2's real last gasp still counts
    collector.handle("meters/m2/status", status("power_fail", day_clock.now()))
    collector.flush()
    comm = storage.meter_comm("m2")
    assert comm.last_interval_end == now and judge(comm, now, PERIOD, 2).gasp


def test_the_skew_is_configurable(storage, day_clock):
    from cloud.outage.collector import IntakeConfig

    c = Collector(storage, day_clock, intake=IntakeConfig(skew=timedelta(seconds=10)))
    c.handle("meters/m1/status", status("power_fail", day_clock.now() + timedelta(seconds=11)))
    assert c.stats.malformed == {"at in the future": 1}


def test_a_genuine_reading_or_power_restored_clears_a_last_gasp_and_a_stale_status_is_ignored(collector, storage,
                                                                                               day_clock):
    t = day_clock.now()
    collector.handle("meters/m1/interval", reading("m1", 1, t))
    collector.handle("meters/m1/status", status("power_fail", t + timedelta(minutes=1)))
    collector.flush()
    assert judge(storage.meter_comm("m1"), t, PERIOD, 2).gasp
    day_clock.advance(PERIOD)
    collector.handle("meters/m1/interval", reading("m1", 2, t + PERIOD))
    collector.flush()
    assert judge(storage.meter_comm("m1"), t + PERIOD, PERIOD, 2) is None
    collector.handle("meters/m1/status", status("power_fail", t + timedelta(minutes=5)))  # a retained replay: stale
    collector.flush()
    assert storage.meter_comm("m1").status is MeterState.POWER_FAIL  # the newest status before the reading
    assert judge(storage.meter_comm("m1"), t + PERIOD, PERIOD, 2) is None
    collector.handle("meters/m1/status", status("power_fail", t + PERIOD + timedelta(minutes=1)))
    collector.handle("meters/m1/status", status("power_restored", t + PERIOD + timedelta(minutes=2)))
    collector.flush()
    assert judge(storage.meter_comm("m1"), t + PERIOD, PERIOD, 2) is None


def test_a_last_gasp_on_the_window_boundary_counts(day_clock):
    end = day_clock.now()
    comm = MeterComm("m1", end, end, MeterState.POWER_FAIL, end, end)
    j = judge(comm, end, PERIOD, 2)
    assert j is not None and j.gasp and j.strong and j.since == end


@pytest.mark.parametrize("when", ["0001-01-01T00:30:00+09:00", "1970-01-01T00:30:00+00:00", "9999-12-31T23:30:00+00:00"])
def test_absurd_times_are_refused(collector, storage, day_clock, when):
    body = json.loads(reading("m1", 1, day_clock.now()))
    body["interval_end"] = when
    body["interval_start"] = when.replace(":30:00", ":00:00")
    collector.handle("meters/m1/interval", json.dumps(body).encode())
    collector.handle("meters/m1/status", status("power_fail", when))
    collector.flush()
    assert storage.reading_count() == 0 and storage.meter_comm("m1") is None
    assert len(storage.dead_letters()) == 2


def test_a_16_mb_reading_and_deep_nesting_are_refused_without_a_traceback(collector, storage, day_clock, caplog):
    huge = reading("m1", 1, day_clock.now(), note="x" * (16 * 1024 * 1024))
    deep = b'{"meter_id": "m1", "seq": 2, "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with caplog.at_level(logging.WARNING):
        collector.handle("meters/m1/interval", huge)
        collector.handle("meters/m1/interval", deep[:10_000])  # below the size limit: msgspec bounds the depth
        collector.flush()
    assert storage.reading_count() == 0
    assert not any(r.exc_info for r in caplog.records)
    assert {d.reason for d in storage.dead_letters()} <= {"too large", "nested too deeply", "not JSON"}
    assert all(len(d.excerpt) < 300 for d in storage.dead_letters())


def test_the_devkit_broker_limits_packet_size(broker):
    from cloud.broker import MAX_PACKET_SIZE

    assert f"max_packet_size {MAX_PACKET_SIZE}" in broker.conf_path.read_text()


def test_a_resumed_session_with_a_long_backlog_does_not_wait_for_the_suback(broker, publisher):
    """The backlog arrives ahead of the SUBACK; slow handling of it must not look like a dead broker."""
    got: list[int] = []

    def slow(c, userdata, msg):
        time.sleep(0.01)
        got.append(msg.mid)
        c.ack(msg.mid, msg.qos)

    def subscriber():
        settings = broker.account("operator", "backlogged")
        c = make_client(settings, manual_ack=True)
        c.on_message = slow
        start_subscriber(c, settings, [("meters/+/interval", 1)], session_expiry_s=600, timeout=1)
        return c

    disconnect(subscriber())
    for i in range(300):  # 3 s of handling, the SUBACK timeout is 1 s
        publisher.publish(f"meters/m{i}/interval", b"{}", qos=1).wait_for_publish(5)
    c = subscriber()
    wait_until(lambda: len(got) >= 300, timeout=20, what="the backlog")
    disconnect(c)


def test_registrations_import_names_the_missing_columns(tmp_path):
    from tests.cloud.outage.test_outage_cli import run

    path = tmp_path / "reg.csv"
    path.write_text("meter_id,customer_number,prefecture,city,concentrator_id\nA1,C1,広島県,広島市中区,K1\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        run("cloud", "registrations", "import", str(path), "--db", f"sqlite:///{tmp_path / 'o.db'}")
    message = str(exc.value.code)
    assert "missing column district" in message and "\n" not in message
    assert "meter_id,customer_number,prefecture,city,district,concentrator_id,email,name,language" in message


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_collector_fails_loudly_when_its_mqtt_thread_cannot_go_on(broker, publisher, storage, day_clock, monkeypatch):
    c = Collector(storage, day_clock, flush_interval_s=0.05)
    c.start(broker.account("operator", "collector"))
    assert c.healthy
    monkeypatch.setattr(c, "handle", lambda topic, payload: (_ for _ in ()).throw(MemoryError()))
    publisher.publish("meters/m1/interval", b"{}", qos=1).wait_for_publish(5)
    wait_until(lambda: not c.healthy, what="the failure to show")
    assert "MemoryError" in c.failure
    threading.Thread(target=c.stop, daemon=True).start()


def test_a_topic_or_payload_with_nul_is_set_aside_too(collector, storage, day_clock):
    """PostgreSQL refuses NUL in text: a dead letter that cannot be written would stall the stream."""
    collector.handle("\x00", b"{\x00}")
    collector.handle("meters/m1/interval", reading("m1", 1, day_clock.now()))
    collector.flush()
    assert storage.reading_keys() == [("m1", 1)] and storage.dead_letters()[0].topic == "\\x00"


def test_times_before_the_meters_commissioning_are_refused(collector, storage, day_clock):
    from cloud.outage.model import Area, Registration

    now = day_clock.now()
    area = Area("広島県", "広島市中区", "紙屋町")
    storage.upsert_registrations([Registration("m1", "C-1", area, "CN1", commissioned_at=now - timedelta(days=1)),
                                  Registration("m2", "C-2", area, "CN1")])
    storage.upsert_registrations([Registration("m1", "C-1", area, "CN1")])  # saying nothing keeps what was known
    collector.handle("meters/m1/interval", reading("m1", 1, now - timedelta(days=2)))
    collector.handle("meters/m1/status", status("power_fail", now - timedelta(days=2)))
    collector.handle("meters/m1/interval", reading("m1", 2, now))
    collector.handle("meters/m2/interval", reading("m2", 1, now - timedelta(days=2)))  # not known: 2010 is the bound
    collector.flush()
    assert storage.reading_keys() == [("m1", 2), ("m2", 1)] and storage.meter_comm("m1").status is None
    assert sorted(d.reason for d in storage.dead_letters()) == ["at before commissioning",
                                                               "interval_start before commissioning"]
    assert json.loads(next(d.excerpt for d in storage.dead_letters() if d.topic.endswith("interval")))["seq"] == 1


def test_registrations_import_reads_an_optional_commissioning_time(tmp_path):
    from tests.cloud.outage.test_outage_cli import run

    from cloud.outage.storage import open_storage

    url = f"sqlite:///{tmp_path / 'o.db'}"
    path = tmp_path / "reg.csv"
    path.write_text("meter_id,customer_number,prefecture,city,district,concentrator_id,commissioned_at\n"
                    "A1,C1,広島県,広島市中区,紙屋町,K1,2026-04-01T09:00:00+09:00\nA2,C2,広島県,広島市中区,紙屋町,K1,\n",
                    encoding="utf-8")
    run("cloud", "registrations", "import", str(path), "--db", url)
    regs = open_storage(url).registrations(["A1", "A2"])
    assert regs["A1"].commissioned_at.isoformat() == "2026-04-01T09:00:00+09:00" and regs["A2"].commissioned_at is None
    path.write_text(path.read_text(encoding="utf-8").replace("2026-04-01T09:00:00+09:00", "2026-04-01"), encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        run("cloud", "registrations", "import", str(path), "--db", url)
    assert "reg.csv:2: commissioned_at '2026-04-01' is not an ISO-8601 time with a UTC offset" in str(exc.value.code)


def test_the_dead_letters_command_lists_the_newest(tmp_path, day_clock, capsys):
    from tests.cloud.outage.test_outage_cli import run

    from cloud.outage.storage import open_storage

    url = f"sqlite:///{tmp_path / 'o.db'}"
    c = Collector(open_storage(url), day_clock)
    c.handle("meters/ANY/interval", reading("ANY", 2**63, day_clock.now()))
    c.handle("meters/m1/status", b"\xff")
    c.flush()
    run("cloud", "dead-letters", "--db", url, "--limit", "1")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "2 dead letters; the newest 1:" and len(out) == 3
    assert out[2].split("\t")[1:3] == ["meters/m1/status", "not UTF-8"]


@pytest.mark.parametrize("offset", [timedelta(hours=9), timedelta(0), timedelta(hours=-5)])
def test_a_readings_time_bounds_are_exact_in_any_utc_offset(storage, day_clock, offset):
    """Compared in the meter's own offset: up to the skew ahead is accepted, a second more is refused."""
    from datetime import datetime, timezone

    c = Collector(storage, day_clock, intake=IntakeConfig(skew=timedelta(seconds=10)))
    tz = timezone(offset)

    def at(end: datetime, seq: int, start: datetime | None = None) -> bytes:
        return json.dumps({"meter_id": "m1", "seq": seq, "interval_start": (start or end - PERIOD).astimezone(tz).isoformat(),
                           "interval_end": end.astimezone(tz).isoformat()}).encode()

    latest = day_clock.now() + timedelta(seconds=10)
    c.handle("meters/m1/interval", at(latest, 1))
    c.handle("meters/m1/interval", at(latest + timedelta(seconds=1), 2))
    c.handle("meters/m1/interval", at(latest, 3, start=datetime(2009, 12, 31, 23, 59, tzinfo=timezone.utc)))
    c.flush()
    assert storage.reading_keys() == [("m1", 1)]
    assert c.stats.malformed == {"interval_end in the future": 1, "interval_start too old": 1}
