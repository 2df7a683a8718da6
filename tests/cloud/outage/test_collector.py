"""The collector against a real Mosquitto: dedup, malformed input, Table 2, $share and restarts."""
from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta

from mqtt_wire import parse_connect, read_connect
from polling import wait_for as wait_until

from appliance.clock import iso
from appliance.config import MqttSection
from cloud.mqtt import BrokerRefused
from cloud.outage.collector import FLUSH_AHEAD, Collector, Timing
from cloud.outage.model import Area, Registration
from cloud.outage.storage import open_storage

PERIOD = timedelta(minutes=30)


def reading(meter: str, seq: int, end) -> dict:
    return {"meter_id": meter, "seq": seq, "interval_start": iso(end - PERIOD), "interval_end": iso(end),
            "power_w": 420.0, "energy_wh": 210.0}


def publish(client, topic: str, payload) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    client.publish(topic, data, qos=1).wait_for_publish(5)


def register(storage, meter: str, concentrator: str) -> None:
    storage.upsert_registrations([Registration(meter, f"C-{meter}", Area("広島県", "広島市中区", "基町"), concentrator)])


def test_readings_are_stored_once_and_malformed_ones_counted(broker, publisher, storage, day_clock):
    register(storage, "m2", "c1")
    c = Collector(storage, day_clock, flush_interval_s=0.05)
    c.start(broker.account("operator", "collector"))
    end = day_clock.now()
    publish(publisher, "meters/m1/interval", reading("m1", 1, end))
    publish(publisher, "meters/m1/interval", reading("m1", 1, end))  # a duplicate
    publish(publisher, "concentrators/c1/batch", {"readings": [reading("m2", 7, end), {"meter_id": "m 3!", "seq": 1}]})
    bad = {
        "meters/m4/interval": b"\xff\xfe",
        "meters/m5/interval": b"{not json",
        "meters/m6/interval": reading("other", 1, end),
        "meters/m7/interval": {**reading("m7", 1, end), "interval_start": "2026-11-23T10:00"},
        "meters/m8/interval": {**reading("m8", 1, end), "seq": "1"},
        "meters/m9/status": {"state": "exploded", "at": iso(end)},
        "concentrators/c2/batch": [1, 2],
    }
    for topic, payload in bad.items():
        publish(publisher, topic, payload)
    wait_until(lambda: c.stats.messages == 10, what="all messages")
    c.stop()
    assert storage.reading_keys() == [("m1", 1), ("m2", 7)]
    assert c.stats.stored == 2 and c.stats.duplicates == 1
    assert c.stats.malformed == {
        "not UTF-8": 1, "not JSON": 1, "meter_id differs from topic": 1, "invalid interval_start": 1,
        "invalid seq": 1, "invalid state": 1, "invalid": 1, "invalid meter_id": 1,
    }
    letters = storage.dead_letters()
    assert c.stats.dead_letters == len(letters) == 8  # each refused message is set aside with its reason
    assert {d.reason for d in letters} == set(c.stats.malformed)
    assert ("meters/m8/interval", "invalid seq") in {(d.topic, d.reason) for d in letters}


def test_a_concentrator_speaks_only_for_the_meters_registered_under_it(broker, publisher, storage, day_clock):
    """A batch from c1 holding c2's meter and an unregistered one: c1's own readings are stored, the
    others set aside with the reason; registered later under c1, the stranger is taken."""
    register(storage, "m1", "c1")
    register(storage, "m2", "c2")
    c = Collector(storage, day_clock, flush_interval_s=0.05)
    c.start(broker.account("operator", "collector"))
    end = day_clock.now()
    publish(publisher, "concentrators/c1/batch",
            {"readings": [reading("m1", 1, end), reading("m2", 1, end), reading("m3", 1, end)]})
    wait_until(lambda: c.stats.messages == 1, what="the batch")
    c.flush()
    assert storage.reading_keys() == [("m1", 1)]
    letters = storage.dead_letters()
    assert {(d.topic, d.reason) for d in letters} == {("concentrators/c1/batch", "meter not registered under the concentrator")}
    assert sorted(json.loads(d.excerpt)["meter_id"] for d in letters) == ["m2", "m3"]  # whole, to replay by hand
    register(storage, "m3", "c1")
    publish(publisher, "concentrators/c1/batch", {"readings": [reading("m3", 2, end)]})
    publish(publisher, "concentrators/c2/batch", {"readings": [reading("m2", 2, end)]})
    wait_until(lambda: c.stats.messages == 3, what="the next batches")
    c.stop()
    assert storage.reading_keys() == [("m1", 1), ("m2", 2), ("m3", 2)]


def test_no_communication_list_after_grace(broker, publisher, storage, day_clock):
    c = Collector(storage, day_clock, Timing(PERIOD, timedelta(minutes=2)), flush_interval_s=0.05)
    c.start(broker.account("operator", "collector"))
    w0 = day_clock.now()  # 10:00, a window end
    for m in ("m1", "m2", "m3"):
        publish(publisher, f"meters/{m}/interval", reading(m, 1, w0))
    day_clock.advance(PERIOD)  # 10:30: window 10:00-10:30 ends; m3 stays silent, m2 reports late
    for m in ("m1", "m2"):
        publish(publisher, f"meters/{m}/interval", reading(m, 2, w0 + PERIOD))
    publish(publisher, "meters/m1/status", {"state": "power_fail", "at": iso(day_clock.now() + timedelta(seconds=30))})
    wait_until(lambda: c.stats.messages == 6, what="messages")
    assert c.poll_window().window_end == w0  # before the grace period: still the previous window
    day_clock.advance(timedelta(minutes=2))
    closed = c.poll_window()
    assert (closed.window_end, closed.silent) == (w0 + PERIOD, 2)
    table2 = c.no_communication()
    assert table2.window_end == w0 + PERIOD and sorted(table2.meter_ids) == ["m1", "m3"]
    assert c.poll_window() is None  # once per window
    c.stop()


def test_two_collectors_on_a_shared_subscription_neither_lose_nor_double_count(broker, publisher, storage_url, day_clock):

    stores = [open_storage(storage_url), open_storage(storage_url)]
    collectors = [Collector(s, day_clock, flush_interval_s=0.05, batch_size=200) for s in stores]
    for i, c in enumerate(collectors):
        c.start(broker.account("operator", f"collector-{i}"), share_group="outage", persistent=True)
    end = day_clock.now() - 4 * PERIOD  # every reading is in the past
    sent = 0
    for seq in range(1, 5):
        for m in range(150):
            publisher.publish(f"meters/m{m}/interval", json.dumps(reading(f"m{m}", seq, end + seq * PERIOD)), qos=1)
            sent += 1
    for m in range(50):  # redeliveries of earlier readings
        publisher.publish(f"meters/m{m}/interval", json.dumps(reading(f"m{m}", 1, end + PERIOD)), qos=1)
    wait_until(lambda: sum(c.stats.messages for c in collectors) == sent + 50, timeout=30, what="all messages")
    for c in collectors:
        c.stop()
    assert all(c.stats.messages > 0 for c in collectors)  # the broker really shared the load
    assert stores[0].reading_count() == sent == 600
    assert sum(c.stats.stored for c in collectors) == 600
    assert sum(c.stats.duplicates for c in collectors) == 50
    for s in stores:
        s.close()


def test_a_collector_crash_loses_nothing(broker, publisher, storage, day_clock):
    """Killed with readings received but not committed: the persistent session redelivers them."""
    c = Collector(storage, day_clock, flush_interval_s=3600, batch_size=10**6)  # nothing commits on its own
    c.start(broker.account("operator", "collector-a"), persistent=True)
    end = day_clock.now()
    for m in range(20):
        publish(publisher, f"meters/m{m}/interval", reading(f"m{m}", 1, end))
    wait_until(lambda: c.stats.messages == 20, what="first messages")
    c.stop(flush=False)  # crash: nothing stored, nothing acknowledged
    assert storage.reading_count() == 0
    for m in range(20, 30):  # sent while the collector is down
        publish(publisher, f"meters/m{m}/interval", reading(f"m{m}", 1, end))
    again = Collector(storage, day_clock, flush_interval_s=0.05)
    again.start(broker.account("operator", "collector-a"), persistent=True)
    wait_until(lambda: storage.reading_count() == 30, what="redelivered readings")
    again.stop()
    assert len(set(storage.reading_keys())) == 30


def test_two_collector_processes_split_the_load_and_neither_lose_nor_double_count(tmp_path, broker, publisher,
                                                                                  day_clock):
    """As deployed: two ``smartmeter cloud collector`` processes in one $share group, one database."""
    import subprocess
    import sys


    url = f"sqlite:///{tmp_path / 'outage.db'}"
    open_storage(url).close()  # the schema exists before both processes start
    logs = [open(tmp_path / f"collector-{i}.log", "wb") for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "-v", "cloud", "collector", "--db", url,
                               "--mqtt-config", str(broker.party_file("operator", f"collector-p{i}")),
                               "--share-group", "outage", "--persistent"], stdout=logs[i], stderr=logs[i]) for i in range(2)]
    try:
        import time

        time.sleep(2.5)  # both subscribed
        end = day_clock.now()
        for seq in range(1, 5):
            for m in range(150):
                publish(publisher, f"meters/m{m}/interval", reading(f"m{m}", seq, end + seq * PERIOD))
        for m in range(50):  # redeliveries must not count twice, whichever process gets them
            publish(publisher, f"meters/m{m}/interval", reading(f"m{m}", 1, end + PERIOD))
        store = open_storage(url)
        wait_until(lambda: store.reading_count() >= 600, timeout=30, what="600 readings stored")
        time.sleep(1.0)
        assert store.reading_count() == 600
        store.close()
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        for f in logs:
            f.close()
    import re

    stats = [re.search(r"messages (\d+), stored (\d+), duplicates (\d+)", (tmp_path / f"collector-{i}.log").read_text())
             for i in range(2)]
    assert all(stats), "each collector prints its totals when it stops"
    stored = [int(m.group(2)) for m in stats]
    assert all(n > 0 for n in stored) and sum(stored) == 600  # the broker shared the load; none counted twice
    assert sum(int(m.group(3)) for m in stats) == 50


def contract_state(meter: str, version: int, at, company: str = "A", switch: object = "immediate") -> bytes:
    return json.dumps({"meter_id": meter, "at": iso(at), "version": version,
                       "in_force": [{"role": "supply", "company": company, "name": f"{company}社",
                                     "data_types": ["time", "energy"], "menu": None, "since": iso(at)}],
                       "pending": [{"id": 3, "kind": "supply", "action": "contract", "company": "B", "name": "B社",
                                    "switch": switch, "data_types": ["time"], "menu": "夜トク", "source": "remote"}]}).encode()


def test_a_meters_contract_state_keeps_the_newest_and_refuses_a_malformed_one(storage, day_clock):
    c = Collector(storage, day_clock)
    now = day_clock.now()
    c.handle("meters/m1/contracts", contract_state("m1", 2, now, "B", {"weekly": [{"day": "fri", "at": "18:00"}]}))
    c.handle("meters/m1/contracts", contract_state("m1", 1, now, "A"))  # older, delivered late
    c.handle("meters/m2/contracts", contract_state("m1", 5, now))  # another meter's topic
    c.handle("meters/m1/contracts", contract_state("m1", 6, now, switch="next tuesday"))
    c.handle("meters/m1/contracts", contract_state("m1", 7, now + timedelta(hours=1)))  # from the future
    c.flush()
    state = storage.contract_state("m1")
    assert state.version == 2 and state.in_force[0]["company"] == "B"
    assert state.pending[0]["switch"] == {"weekly": [{"day": "fri", "at": "18:00"}]}
    assert storage.contract_state("m2") is None
    assert c.stats.contract_states == 2 and len(storage.dead_letters()) == 3


def test_the_collector_asks_the_broker_to_send_four_batches_ahead_of_its_acknowledgements(tmp_path, day_clock):
    """It acknowledges a message only once its batch is committed: without an explicit MQTT 5 Receive
    Maximum a broker sends a few messages (Mosquitto 20, EMQX 32) and waits, and the collector trickles."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    collector = Collector(open_storage(f"sqlite:///{tmp_path / 'o.db'}"), day_clock, batch_size=500)
    caught: list[BaseException] = []

    def start():
        try:
            collector.start(MqttSection(host="127.0.0.1", port=server.getsockname()[1]), persistent=True)
        except (BrokerRefused, TimeoutError) as exc:  # no broker answers here: the CONNECT is all this test wants
            caught.append(exc)

    starter = threading.Thread(target=start, daemon=True)
    starter.start()
    try:
        _, props, _ = parse_connect(read_connect(server))
    finally:
        server.close()
        starter.join(15)
        collector.stop(flush=False)
    assert props.ReceiveMaximum == FLUSH_AHEAD * 500
    assert caught  # and it said so rather than hanging
