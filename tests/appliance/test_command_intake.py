"""Commands at the meter's door: only a company's arrive, retained ones ignored, size and queue bounded,
and a flood of junk leaving a handful of alert rows, not one per message."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from appliance.mqtt import MqttUplink
from appliance.service import COMMAND_QUEUE
from appliance.store import ALERTS_KEPT, Store
from appliance.trust import keys
from appliance.uplink import MAX_COMMAND_BYTES
from meter_rig import Rig
from polling import wait_for

METER = "MTR-C1"


def party(broker, kind: str, name: str):
    """A connected client on party ``name``'s own account."""
    from cloud.mqtt import connect, make_client

    account = broker.account(kind, name)
    c = make_client(account)
    connect(c, account)
    return c


def send(broker, payload: bytes, retain: bool, sender: tuple[str, str] = ("company", "A")) -> None:
    """As ``sender`` (kind, name); by default a company: the only kind of party that may command a meter."""
    from cloud.mqtt import disconnect

    c = party(broker, *sender)
    try:
        c.publish(f"meters/{METER}/commands", payload, qos=1, retain=retain).wait_for_publish(5)
    except RuntimeError:  # a refused publish may cost the sender its connection
        pass
    finally:
        disconnect(c)


def meter_uplink(broker, clock, got: list[bytes], arrived: threading.Event) -> MqttUplink:
    account = broker.account("meter", METER)
    uplink = MqttUplink(METER, account.host, account.port, clock, will_delay=0, settings=account,
                        on_command=lambda p: (got.append(p), arrived.set()))
    uplink.start()
    wait_for(lambda: send(broker, b"probe", retain=False) or got, what="the meter subscribed")
    wait_for(lambda: got.count(b"probe") == len(got), what="no more probes")
    got.clear()
    arrived.clear()
    return uplink


def test_a_retained_command_is_ignored_also_when_published_while_the_meter_is_online(broker, clock):
    got: list[bytes] = []
    arrived = threading.Event()
    uplink = meter_uplink(broker, clock, got, arrived)
    try:
        send(broker, b'{"type": "retained-live"}', retain=True)
        send(broker, b"x" * (MAX_COMMAND_BYTES + 2048), retain=False)  # over the packet size the meter takes
        send(broker, b'{"type": "live"}', retain=False)
        assert arrived.wait(5)
        threading.Event().wait(0.3)
        assert got == [b'{"type": "live"}']
    finally:
        uplink.stop()
        send(broker, b"", retain=True)  # clear the retained message


def test_only_a_company_commands_a_meter_and_no_other_meter_reads_its_commands(broker, clock):
    """interfaces.md section 2 as the meter lives it: another meter's or a read-only tap's command never
    arrives, and another meter's account sees none of this meter's commands."""
    from cloud.mqtt import disconnect

    got: list[bytes] = []
    arrived = threading.Event()
    overheard: list[bytes] = []
    neighbour = party(broker, "meter", "MTR-C2")
    neighbour.on_message = lambda _c, _u, m: overheard.append(m.payload)
    neighbour.subscribe([(f"meters/{METER}/commands", 1), ("meters/+/commands", 1)])
    uplink = meter_uplink(broker, clock, got, arrived)
    try:
        send(broker, b'{"type": "from-a-meter"}', retain=False, sender=("meter", "MTR-C3"))
        send(broker, b'{"type": "from-a-tap"}', retain=False, sender=("auditor", "tap"))
        send(broker, b'{"type": "from-company-A"}', retain=False)
        assert arrived.wait(5)
        threading.Event().wait(0.3)
        assert got == [b'{"type": "from-company-A"}']
        assert overheard == [] and neighbour.is_connected()
    finally:
        uplink.stop()
        disconnect(neighbour)


@pytest.fixture
def rig(tmp_path, broker, clock):
    r = Rig(tmp_path, broker, clock, companies=(), service_options={"root_public_key": keys.generate().public_key()})
    yield r
    r.close()


def test_an_oversized_command_is_dropped_before_it_is_queued_and_the_queue_is_bounded(rig, caplog):
    service = rig.service
    service.submit_command(b"{" + b" " * MAX_COMMAND_BYTES + b"}")
    assert service.commands_dropped == 1 and service._commands.qsize() == 0
    for _ in range(COMMAND_QUEUE + 50):
        service.submit_command(b'{"type": "nonsense"}')
    assert service._commands.qsize() == COMMAND_QUEUE and service.commands_dropped == 51
    assert sum("dropped" in r.getMessage() for r in caplog.records) == 1  # logged once a minute at most
    service.step()
    assert service._commands.qsize() == 0


def test_a_flood_of_junk_commands_leaves_one_alert_row_that_counts_them(rig):
    junk = json.dumps({"type": "contract_change", "cose_sign1": "AAAA"}).encode()
    for _ in range(20):
        for _ in range(COMMAND_QUEUE):
            rig.service.submit_command(junk)
        rig.service.step()
    alerts = rig.store.alerts()
    assert len(alerts) == 1 and alerts[0]["count"] == 20 * COMMAND_QUEUE
    rig.clock.advance(timedelta(minutes=2))
    rig.service.submit_command(junk)
    rig.service.step()
    assert [a["count"] for a in rig.store.alerts()] == [1, 20 * COMMAND_QUEUE]  # a new minute, a new row


def test_alerts_are_capped_in_count_and_pruned_with_the_readings_retention(tmp_path, clock):
    store = Store(tmp_path / "s.sqlite3")
    for i in range(ALERTS_KEPT + 200):  # a different claimed company each: nothing coalesces
        store.raise_alert(clock.now(), "remote_rejected", "junk", "junk", f"C{i}")
    rows = store.db.execute("SELECT min(id), count(*) FROM alerts").fetchone()
    assert rows == (201, ALERTS_KEPT)  # the newest kept
    assert store.prune_alerts(clock.now() + timedelta(seconds=1)) == ALERTS_KEPT
    store.close()


def test_the_service_prunes_alerts_older_than_the_retention(rig):
    rig.store.raise_alert(rig.clock.now(), "breaker_fault", "old", "old")
    rig.service.step()
    rig.clock.advance(timedelta(days=31))  # the rig keeps 30 days
    rig.service.step()
    assert rig.store.alerts(include_cleared=True) == []
