"""Embodiment 4 end to end: real Mosquitto, emulated chip over Modbus TCP, company servers that
answer (or spoof, or stay silent), the breaker on gpiozero's mock pins, simulated time."""
from __future__ import annotations

from datetime import timedelta

from gpiozero.pins.mock import MockFactory
from meter_rig import HALF_HOUR, METER, data, supply, wait_for

from appliance.domain import Action, Company, Role, SwitchTime
from appliance.trust import sign_command
from appliance.trust.document import ContractDocument, issue_document
from appliance.datatypes import parse_data_types
from drivers.breaker import RelayBreaker

A_TYPES = ["energy", "power", "time"]
D_TYPES = ["energy", "voltage"]
RECORDS = {"A": A_TYPES, "D": D_TYPES}


def commission(rig):
    rig.commission(supply("A", "time,power,energy"), data("D", "energy,voltage"))


def events(rig, code, name=None):
    return [e for e in rig.companies[code].events() if name is None or e["event"] == name]


def settle(rig, seconds=0.3):
    """Step without moving simulated time until no confirmation request is open (answers travel over
    the real broker), at least ``seconds``/3 and at most 3 s more for a silent company."""
    import time

    start = time.monotonic()
    while True:
        rig.service.step()
        elapsed = time.monotonic() - start
        if elapsed >= seconds / 3 and not rig.service.confirmer.open:
            rig.service.step()
            return
        if elapsed > seconds + (3.0 if rig.service.confirmer.open and not _silent(rig) else 0):
            return
        time.sleep(0.02)


def drain(rig, timeout=20.0):
    """Like Rig.drain, but done when everything released is delivered or held by confirmation."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rig.service.step()
        now = rig.clock.now()
        sendable = [r for r in rig.store.released(now, 0, 100000) if not rig.service.confirmer.would_hold(r, now)]
        if not sendable and rig.service.pump.in_flight == 0 and not rig.service.confirmer.open:
            return
        time.sleep(0.02)
    raise AssertionError(f"outbox not drained: {rig.store.outbox_by_company()}")


def _silent(rig):
    return all(rig.companies[c].answer == "silent" for c in rig.service.confirmer.open)


def run_settled(rig, steps, dt=HALF_HOUR):
    for _ in range(steps):
        rig.service.step()
        settle(rig, 0.1)
        rig.clock.advance(dt)
    settle(rig)


def breaker_on(tmp_path, factory, **kw):
    return lambda: RelayBreaker(17, tmp_path / "breaker.json", pin_factory=factory, **kw)


def test_matching_confirmations_release_the_data_once_a_day(make_rig):
    rig = make_rig(records=RECORDS)
    commission(rig)
    run_settled(rig, 6)
    drain(rig)
    assert [p["seq"] for p in rig.received("A")] == [1, 2, 3, 4, 5, 6]
    assert [p["seq"] for p in rig.received("D")] == [1, 2, 3, 4, 5, 6]
    assert len(events(rig, "A", "confirm_request")) == 1  # once per period (one day), not per send
    assert not events(rig, "A", "security_error") and rig.store.alerts() == []
    # a day later the meter asks again before sending
    run_settled(rig, 48)
    drain(rig)
    assert len(events(rig, "A", "confirm_request")) == 2


def test_a_spoofed_answer_from_the_power_company_opens_the_breaker_and_notifies(make_rig, tmp_path):
    factory = MockFactory()
    rig = make_rig(records=RECORDS, answers={"A": "wrong"}, breaker=breaker_on(tmp_path, factory),
                   recheck_after=timedelta(hours=6))
    commission(rig)
    assert factory.pin(17).state  # closed (coil energised) before anything happened
    run_settled(rig, 3)
    drain(rig)
    # neither sent nor lost: A's readings stay in the outbox; D (honest) got its data
    assert rig.companies["A"].data() == []
    assert rig.store.outbox_by_company().get("A") == 3
    assert [p["seq"] for p in rig.received("D")] == [1, 2, 3]
    err, = events(rig, "A", "security_error")
    assert err["code"] == "data_types_mismatch" and err["breaker"] == "open" and "voltage" in err["reason"]
    alert, = [a for a in rig.store.alerts() if a["kind"] == "security_error"]
    assert alert["company_code"] == "A" and "OPEN" in alert["message"] and "遮断器を開きました" in alert["message_ja"]
    assert not factory.pin(17).state  # the relay is open
    state = rig.store.breaker_state()
    assert state.closed is False and "security error" in state.reason and state.override is False

    # the company's record is put right: after recheck_after the meter asks again, data flows, breaker closes
    rig.companies["A"].answer = "records"
    rig.clock.advance(timedelta(hours=6))
    settle(rig, 0.5)
    drain(rig)
    got = [p["seq"] for p in rig.received("A")]
    assert got[:3] == [1, 2, 3] and len(got) == len(rig.store.entitlements("A"))  # the held ones, and on
    assert factory.pin(17).state and rig.store.breaker_state().closed is True


def test_a_badly_signed_answer_from_a_data_company_holds_its_data_but_not_the_power(make_rig, tmp_path):
    factory = MockFactory()
    rig = make_rig(records=RECORDS, answers={"D": "forged"}, breaker=breaker_on(tmp_path, factory))
    commission(rig)
    run_settled(rig, 2)
    drain(rig)
    assert [p["seq"] for p in rig.received("A")] == [1, 2]
    assert rig.companies["D"].data() == [] and rig.store.outbox_by_company().get("D") == 2
    err, = events(rig, "D", "security_error")
    assert err["code"] == "bad_signature" and err["breaker"] == "closed"
    assert factory.pin(17).state  # a data company cannot cut the power


def test_no_answer_holds_the_data_retries_with_backoff_and_delivers_everything_later(make_rig):
    rig = make_rig(records=RECORDS, answers={"A": "silent"})
    commission(rig)
    run_settled(rig, 4)
    for _ in range(90):  # fifteen simulated minutes in 10 s steps: timeouts of 30 s, backoff capped at 5 min
        rig.clock.advance(timedelta(seconds=10))
        rig.service.step()
    drain(rig)
    assert rig.companies["A"].data() == [] and rig.store.outbox_by_company().get("A") == 4
    from datetime import datetime

    asked = [datetime.fromisoformat(e["at"]) for e in events(rig, "A", "confirm_request")]
    gaps = [(b - a).total_seconds() for a, b in zip(asked[2:], asked[3:])]
    assert len(asked) >= 5 and gaps == sorted(gaps) and gaps[0] < gaps[-1] <= 300 + 30 + 10  # backing off
    assert not events(rig, "A", "security_error") and rig.store.alerts() == []  # silence is not a mismatch
    rig.companies["A"].answer = "records"
    rig.clock.advance(timedelta(minutes=5))  # the next retry is due
    settle(rig, 0.5)
    drain(rig)
    assert [p["seq"] for p in rig.received("A")] == [1, 2, 3, 4]  # nothing lost, nothing guessed
    assert rig.store.outbox_by_company().get("A") is None


def test_a_switch_waits_for_the_incoming_company_and_a_spoofed_one_never_applies(make_rig, tmp_path):
    factory = MockFactory()
    rig = make_rig(answers={"B": "wrong"}, records=RECORDS, breaker=breaker_on(tmp_path, factory),
                   recheck_after=timedelta(hours=6))
    commission(rig)
    rig.change("supply", "contract", "B", "immediate", "time,energy")
    run_settled(rig, 2)
    drain(rig)
    assert rig.store.supply_contract().company.code == "A"  # not switched
    err, = events(rig, "B", "security_error")
    assert err["purpose"] == "switch" and err["change_id"] == 1
    assert [ch.company.code for ch, _ in rig.store.changes(("pending",))] == ["B"]  # kept, not applied
    assert not factory.pin(17).state  # B is a power company: spoofing it opens the breaker

    # an honest B: the same pending change applies at the next attempt, and power returns
    rig.companies["B"].answer = "records"
    rig.clock.advance(timedelta(hours=6))
    settle(rig, 0.5)
    drain(rig)
    assert rig.store.supply_contract().company.code == "B"
    assert [e["event"] for e in events(rig, "B")][-1] == "contract_started"
    assert factory.pin(17).state


def test_new_building_power_comes_on_at_the_first_matching_confirmation(make_rig, tmp_path):
    factory = MockFactory()
    rig = make_rig(records=RECORDS, new_building=True,
                   breaker=breaker_on(tmp_path, factory, default_closed=False))
    pin = factory.pin(17)
    assert [s.state for s in pin.states] == [False]  # came up open, never closed for a moment
    assert rig.store.breaker_state().closed is False
    commission(rig)
    rig.service.step()
    settle(rig, 0.5)
    assert pin.state and rig.store.breaker_state().closed is True
    assert "first matching confirmation from power company A" in rig.store.breaker_state().reason
    # a restart does not go dark again: the journal and the store remember
    rig.stop_service()
    factory2 = MockFactory()
    rig.service_options = lambda: {"root_public_key": rig.service.confirmer.root,
                                   "confirmation": rig.service.confirmer.settings,
                                   "breaker": RelayBreaker(17, tmp_path / "breaker.json", pin_factory=factory2,
                                                           default_closed=False)}
    rig.start_service()
    assert factory2.pin(17).state and [s.state for s in factory2.pin(17).states][-1] is True


def test_a_remote_contract_change_takes_the_card_path_and_a_replay_is_refused(make_rig, registry, clock, broker):
    rig = make_rig(records=RECORDS)
    commission(rig)
    b = registry.companies["B"]
    now = clock.now()
    doc = ContractDocument(kind=Role.SUPPLY, action=Action.CONTRACT, company=Company("B", "B社", "mqtt://b"),
                           data_types=parse_data_types("time,energy"), switch=SwitchTime(immediate=True), serial=7,
                           issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(days=1), meter_id=METER)
    signed = issue_document(doc, company_key=b.key, certificate=b.cert)
    command = sign_command("contract_change", meter_id=METER, company_key=b.key, certificate=b.cert, now=now,
                           document=signed)
    from cloud.mqtt import make_client

    sender = broker.account("company", "B-sender")  # B's server holds account B; any company may send commands
    pub = make_client(sender)
    pub.connect(sender.host, sender.port)
    pub.loop_start()
    try:
        pub.publish(f"meters/{METER}/commands", command, qos=1).wait_for_publish(5)
        wait_for(lambda: (settle(rig, 0.05), rig.store.change(1))[1] is not None, what="the remote change stored")
        ch, book = rig.store.change(1)
        assert ch.source == "remote" and ch.company.code == "B" and ch.serial == 7
        assert rig.store.last_serial("B") == 7
        pub.publish(f"meters/{METER}/commands", command, qos=1).wait_for_publish(5)  # replayed
        wait_for(lambda: (settle(rig, 0.05), rig.store.alerts())[1] != [], what="the replay refused")
    finally:
        pub.disconnect()
        pub.loop_stop()
    alert, = rig.store.alerts()
    assert alert["kind"] == "remote_rejected" and alert["detail"]["code"] == "replayed"
    assert alert["company_code"] == "B"
    assert rig.store.change(2) is None
    # the switch itself is confirmed by B (learnt from contract_scheduled) and applies
    settle(rig, 0.5)
    drain(rig)
    assert rig.store.supply_contract().company.code == "B"
