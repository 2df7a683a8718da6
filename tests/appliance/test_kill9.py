"""``kill -9`` of the meter service at random moments: every reading still reaches every entitled
company exactly once, checked against the meter's own store (its readings and entitlement log)."""
from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.clock import SystemClock
from appliance.store import Store
from cloud.company_server import CompanyServer
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile
from meter_rig import GridOperator, subprocess_meter_config
from polling import wait_for

SMARTMETER = [sys.executable, "-m", "smartmeter.cli"]
K9_DATA = (("D", '["energy", "totals"]', None),)


def start_meter(config: Path, log) -> subprocess.Popen:
    return subprocess.Popen([*SMARTMETER, "appliance", "run", "--config", str(config)], stdout=log, stderr=log,
                            cwd=Path(__file__).resolve().parents[2])


def outbox_empty(db: Path) -> bool:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0


@pytest.mark.slow
def test_kill_9_at_random_points_loses_and_repeats_nothing(tmp_path, broker):
    rng = random.Random(int(os.environ.get("KILL9_SEED", "9")))
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    port = emulator.start_tcp()
    companies = {c: CompanyServer(c, broker.account("company", c), tmp_path / f"{c}.sqlite3").start() for c in "ABD"}
    grid = GridOperator(broker)
    config = subprocess_meter_config(tmp_path / "meter.toml", broker, port, "MTR-K9", data=K9_DATA)
    log = open(tmp_path / "meter.log", "ab")
    kills = 0
    try:
        for round_ in range(10):
            meter = start_meter(config, log)
            if round_ == 4:  # a contract switch lands among the kills: A hands over to B
                subprocess.run([*SMARTMETER, "appliance", "contract", "add", "--config", str(config), "--kind",
                                "supply", "--company", "B", "--data-types", "time,energy", "--switch", "immediate"],
                               check=True, capture_output=True)
            time.sleep(rng.uniform(0.2, 2.5))
            meter.send_signal(signal.SIGKILL)
            meter.wait()
            kills += 1
        meter = start_meter(config, log)  # the last life: let it catch up, then stop it cleanly
        time.sleep(2.5)
        wait_for(lambda: outbox_empty(tmp_path / "meter.sqlite3"), timeout=30, what="the outbox to drain")
        meter.send_signal(signal.SIGTERM)
        assert meter.wait(10) == 0
    finally:
        if meter.poll() is None:
            meter.kill()
        log.close()

    store = Store(tmp_path / "meter.sqlite3")
    seqs = [r["seq"] for r in store.readings()]
    assert kills == 10 and len(seqs) >= 8
    assert seqs == list(range(1, len(seqs) + 1))  # no seq lost or reused across the kills
    for code, server in companies.items():
        owed = {seq for seq, _ in store.entitlements(code)}
        wait_for(lambda: len(server.data()) >= len(owed), timeout=15, what=f"{code}'s readings")
        got = [p["seq"] for p in server.data()]
        assert sorted(got) == sorted(owed), code  # exactly the entitled readings, each once
    assert {seq for seq, _ in store.entitlements("B")}, "the switch to B happened"
    a, b = ({s for s, _ in store.entitlements(c)} for c in "AB")
    assert not a & b and a | b == set(seqs)  # one power company per reading, no gap, no overlap
    assert {s for s, _ in store.entitlements("D")} == set(seqs)
    wait_for(lambda: set(grid.seqs) >= set(seqs), what="the grid operator's readings")
    for server in companies.values():
        server.stop()
    grid.stop()
    emulator.stop()


def retained_status(broker, meter_id: str) -> dict | None:
    """The retained ``meters/{id}/status``, as a newly connecting grid operator sees it."""
    import json

    from cloud.mqtt import make_client

    got: list[dict] = []
    account = broker.account("operator", "status-reader")
    c = make_client(account)
    c.on_message = lambda _c, _u, m: got.append(json.loads(m.payload))
    c.connect(account.host, account.port)
    c.subscribe(f"meters/{meter_id}/status", qos=1)
    c.loop_start()
    time.sleep(0.5)
    c.disconnect()
    c.loop_stop()
    return got[-1] if got else None


def test_status_is_online_while_running_and_the_last_will_says_offline(tmp_path, broker):
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    config = subprocess_meter_config(tmp_path / "meter.toml", broker, emulator.start_tcp(), "MTR-K9", data=K9_DATA)
    with open(tmp_path / "meter.log", "ab") as log:
        meter = start_meter(config, log)
        try:
            wait_for(lambda: (retained_status(broker, "MTR-K9") or {}).get("state") == "online", timeout=15,
                     what="online status")
        finally:
            meter.send_signal(signal.SIGKILL)  # no clean goodbye: the broker publishes the Last Will
            meter.wait()
    wait_for(lambda: (retained_status(broker, "MTR-K9") or {}).get("state") == "offline", timeout=60,
             what="the Last Will")
    emulator.stop()
