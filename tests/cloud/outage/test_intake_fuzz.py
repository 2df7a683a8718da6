"""Hostile traffic against the receiving side: hypothesis-generated payloads and topics into the
collector, and a burst of every hostile message seen into the running pipeline. None may crash, stall,
store garbage or e-mail anyone; every good reading after them is stored.

``SMARTMETER_FUZZ_PLANT=no-validation`` swaps the validation for a bare JSON parse, to show these tests
catch its absence (they must then fail)."""
from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.clock import iso
from cloud.outage import collector as collector_module
from cloud.outage.collector import Collector
from cloud.outage.model import Reading

PERIOD = timedelta(minutes=30)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def planted_defect(monkeypatch):
    if os.environ.get("SMARTMETER_FUZZ_PLANT") == "no-validation":
        from datetime import datetime

        def bare(payload, intake, topic_meter=None):
            o = json.loads(payload)
            return Reading(o["meter_id"], o["seq"], datetime.fromisoformat(o["interval_start"]),
                           datetime.fromisoformat(o["interval_end"]), o)

        monkeypatch.setattr(collector_module, "parse_reading", bare)


def good(meter: str, seq: int, end) -> bytes:
    return json.dumps({"meter_id": meter, "seq": seq, "interval_start": iso(end - PERIOD), "interval_end": iso(end),
                       "power_w": 1.0}).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
fields = {
    "meter_id": st.text(max_size=80) | st.just("m1"),
    "seq": st.integers(-2**70, 2**70) | json_values,
    "interval_start": st.datetimes().map(lambda d: d.isoformat() + "+09:00") | json_values,
    "interval_end": st.datetimes().map(lambda d: d.isoformat() + "+00:00") | json_values,
    "state": st.sampled_from(["online", "offline", "power_fail", "power_restored"]) | json_values,
    "at": st.datetimes().map(lambda d: d.isoformat() + "Z") | json_values,
    "readings": st.lists(json_values, max_size=5),
}
objects = st.fixed_dictionaries({}, optional=fields).map(lambda d: json.dumps(d).encode())
hostile_times = st.datetimes().map(lambda d: d.isoformat() + "+00:00")


@st.composite
def near_valid(draw) -> bytes:
    """A genuine reading with one or two fields made hostile: the messages that get furthest in."""
    body = {"meter_id": "m1", "seq": 1, "interval_start": "2026-11-23T00:30:00+00:00",
            "interval_end": "2026-11-23T01:00:00+00:00", "power_w": 1.0}
    for name in draw(st.lists(st.sampled_from(["seq", "interval_start", "interval_end", "meter_id", "power_w"]),
                              min_size=1, max_size=2)):
        body[name] = draw(hostile_times if name.startswith("interval") else fields.get(name, json_values))
    return json.dumps(body).encode()


payloads = near_valid() | objects | st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode())
topics = st.sampled_from(["meters/m1/interval", "meters/m1/interval", "meters/m1/interval", "meters/m1/status", "concentrators/c1/batch", "meters/x y/status",
                          "meters/m1", "a/b/c/d"]) | st.text(max_size=40)


@FUZZ
@given(topic=topics, payload=payloads)
def test_hostile_messages_never_stop_the_collector_nor_store_garbage(storage, day_clock, topic, payload):
    c = Collector(storage, day_clock)
    before = storage.reading_count()
    seq = before + 1
    c.handle(topic, payload)
    c.handle("meters/good/interval", good("good", seq, day_clock.now()))
    c.flush()
    assert c.pending() == ([], [])
    assert ("good", seq) in storage.reading_keys("good")  # the stream went on
    for meter, stored_seq in storage.reading_keys():
        assert 1 <= stored_seq < 2**63
        comm = storage.meter_comm(meter)  # nothing stored beyond the receiver's clock and skew
        assert comm is None or comm.last_interval_end is None or comm.last_interval_end <= day_clock.now() + c.intake.skew
    now = day_clock.now()
    for m in ("m1",):
        comm = storage.meter_comm(m)
        assert comm is None or comm.status_at is None or comm.status_at <= now + c.intake.skew


HOSTILE = [
    ("meters/ANY/interval", lambda end: good("ANY", 2**63, end)),
    ("meters/SM0000003/interval", lambda end: good("SM0000003", 1, end.replace(year=2099))),
    ("meters/SM0000004/interval", lambda end: good("SM0000004", 1, end).replace(b"2026", b"0001")),
    ("meters/SM0000004/interval", lambda end: good("SM0000004", 2, end).replace(b"2026", b"1970")),
    ("meters/SM0000004/interval", lambda end: good("SM0000004", 3, end).replace(b"2026", b"9999")),
    ("meters/SM0000005/interval", lambda end: b'{"meter_id": "SM0000005", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("meters/SM0000006/interval", lambda end: good("SM0000001", 99, end)),  # body and topic disagree
    ("concentrators/CN1/batch", lambda end: json.dumps({"readings": [json.loads(good("SM0000007", 2**64, end))]}).encode()),
    ("meters/SM0000008/interval", lambda end: b"\xff" * 100),
]


def test_a_burst_of_every_hostile_message_mails_nobody_and_loses_no_good_reading(pipeline, broker):
    from cloud.mqtt import connect, disconnect, make_client

    p = pipeline()
    p.window()  # monitoring starts
    for _ in range(2):
        end = p.clock.now()
        for meter in ("SM0000001", "SM0000002", "SM0000009"):  # forged last gasps, retained, far in the future
            p.publisher.clients[0].publish(f"meters/{meter}/status",
                                       json.dumps({"state": "power_fail", "at": "2099-01-01T00:00:00+00:00"}), qos=1,
                                       retain=True)
        for _ in range(20):
            for topic, make in HOSTILE:
                p.publisher.clients[0].publish(topic, make(end), qos=1)
        sender = broker.account("meter", "SM0000010")  # the broker drops a 16 MB packet and its sender: a connection of its own
        big = make_client(sender)
        connect(big, sender)
        big.publish("meters/SM0000010/interval", b"x" * (16 * 1024 * 1024), qos=0)
        disconnect(big)
        p.publisher.sent += 3 + 20 * len(HOSTILE)
        p.window()
        p.step(60)  # past the declaration delay
    assert p.smtp.messages == []
    assert p.storage.reading_count() == 3 * p.spec.meters  # three windows of every meter
    assert p.storage.outages(open_only=True) == []
    assert p.collector.stats.dead_letters >= 2 * (3 + 20 * len(HOSTILE))
