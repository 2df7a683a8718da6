"""The outbox's promises, checked on the wire (docs/protocol.md, store-and-forward): each company's
stream arrives oldest first, and a message arrives twice only after a lost connection or a kill,
never on a slow but healthy link and never after a clean stop."""
from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from appliance.clock import SystemClock
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile
from meter_rig import HALF_HOUR, Rig, data, supply, subprocess_meter_config
from polling import wait_for
from slow_link import SlowLink
from test_kill9 import SMARTMETER


class Wire:
    """Every reading as it arrives at the broker's subscribers, in arrival order, per topic."""

    def __init__(self, broker) -> None:
        self.seqs: dict[str, list[int]] = defaultdict(list)
        from cloud.mqtt import make_client

        account = broker.account("auditor", "wire")  # reads every topic, writes none
        self.client = make_client(account)
        self.client.on_message = lambda _c, _u, m: self.seqs[m.topic].append(json.loads(m.payload)["seq"])
        self.client.connect(account.host, account.port)
        self.client.subscribe([("meters/+/interval", 1), ("companies/+/meters/+/data", 1)])
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def owed_and_waiting(db: Path, meter_id: str) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Per reading topic, the seqs owed (the meter's readings and entitlement log) and those still in the outbox."""
    with sqlite3.connect(db) as c:
        owed: dict[str, set[int]] = defaultdict(set)
        owed[f"meters/{meter_id}/interval"] = {s for (s,) in c.execute("SELECT seq FROM readings")}
        for seq, code in c.execute("SELECT seq, company_code FROM entitlements"):
            owed[f"companies/{code}/meters/{meter_id}/data"].add(seq)
        waiting: dict[str, set[int]] = defaultdict(set)
        for topic, payload in c.execute("SELECT topic, payload FROM outbox WHERE topic NOT LIKE '%/events'"):
            waiting[topic].add(json.loads(payload)["seq"])
    return owed, waiting


def check_streams(wire: Wire, db: Path, meter_id: str) -> None:
    """Each stream strictly increasing (oldest first, no duplicate), and nothing that left the outbox missing."""
    owed, waiting = owed_and_waiting(db, meter_id)
    gone = {t: seqs - waiting[t] for t, seqs in owed.items()}  # acknowledged by the broker

    def complete() -> bool:
        return all(set(wire.seqs.get(t, [])) >= want for t, want in gone.items())

    wait_for(complete, timeout=20, what="every acknowledged reading on the wire")
    time.sleep(0.5)  # a late duplicate would show now
    assert len(owed) == 4 and all(gone.values())
    for topic, seqs in owed.items():
        got = wire.seqs.get(topic, [])
        assert got == sorted(set(got)), f"{topic}: not strictly increasing: {got}"
        assert set(got) <= seqs, topic


def test_slow_link_each_company_gets_its_readings_in_order_and_once(tmp_path, broker, clock):
    """PUBACKs 2 s late (1 s each way), three companies releasing at different send intervals."""
    link = SlowLink(broker.host, broker.port, delay=1.0).start()
    wire = Wire(broker)
    rig = Rig(tmp_path, broker, clock, companies=(), meter_link=link)
    try:
        rig.commission(supply("A", send=HALF_HOUR), data("B", "energy", send=timedelta(hours=2)),
                       data("D", "energy,totals", send=timedelta(days=1)))
        for _ in range(2 * 48 + 6):  # two days and a bit: D releases twice, B every fourth window
            rig.service.step()
            clock.advance(HALF_HOUR)
            time.sleep(0.15)  # real ticks: several pass before a PUBACK comes back
        rig.drain(timeout=30)
        check_streams(wire, rig.store_path, "MTR-T1")
    finally:
        rig.close()
        wire.stop()
        link.stop()


def test_clean_stops_and_restarts_repeat_nothing(tmp_path, broker):
    """Ten SIGTERMs of ``smartmeter appliance run`` (the real stop path), each followed by a restart."""
    rng = random.Random(10)
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    # 1 s windows and a 1 s tick, so a stop nearly always comes while the last step's messages are in flight
    config = subprocess_meter_config(tmp_path / "meter.toml", broker, emulator.start_tcp(), "MTR-ST", tick="1s",
                                     data=(("B", '["energy"]', "3s"), ("D", '["energy", "totals"]', "5s")))
    wire = Wire(broker)
    db = tmp_path / "meter.sqlite3"
    try:
        with open(tmp_path / "meter.log", "ab") as log:
            for _ in range(10):
                meter = subprocess.Popen([*SMARTMETER, "appliance", "run", "--config", str(config)], stdout=log,
                                         stderr=log, cwd=Path(__file__).resolve().parents[2])
                try:
                    wait_for(lambda: sum(map(len, wire.seqs.values())) > 0 and db.exists(), timeout=15,
                             what="the meter to send")
                    time.sleep(rng.uniform(1.2, 2.8))
                    meter.send_signal(signal.SIGTERM)
                    assert meter.wait(10) == 0
                finally:
                    if meter.poll() is None:
                        meter.kill()
        check_streams(wire, db, "MTR-ST")
    finally:
        wire.stop()
        emulator.stop()


def test_a_row_never_passes_an_earlier_row_of_its_topic_that_is_not_due_yet(tmp_path):
    """Seen in the demo on a running clock: a change's contract_scheduled, stamped a moment after the
    step began, was passed by the confirm_request queued behind it, and the company could not confirm."""
    from datetime import datetime

    from appliance.clock import JST
    from appliance.store import Store

    store = Store(tmp_path / "meter.db")
    t = datetime(2026, 11, 23, 9, 0, tzinfo=JST)
    events, other = "companies/B/meters/M/events", "companies/C/meters/M/events"
    store.enqueue(events, {"event": "contract_scheduled"}, t + timedelta(milliseconds=60), "B")
    store.enqueue(events, {"event": "confirm_request"}, t, "B")
    store.enqueue(other, {"event": "contract_ending"}, t, "C")
    assert [r.topic for r in store.released(t, 0, 10)] == [other]  # B's request waits behind its earlier event
    assert [json.loads(r.payload)["event"] for r in store.released(t + timedelta(seconds=1), 0, 10)
            if r.topic == events] == ["contract_scheduled", "confirm_request"]
    store.close()
