"""Contract cards through a real pcscd + vpcd into the meter core (S801/S802), then switching (S803/S804)
over the rig: emulated chip over Modbus TCP, real Mosquitto, simulated time."""
from __future__ import annotations

from datetime import timedelta

import pytest
from meter_rig import HALF_HOUR, METER, Rig, supply, wait_for

from appliance.api import MeterAPI
from appliance.datatypes import parse_data_types
from appliance.documents import DocumentIntake
from appliance.domain import Action, Company, Role
from appliance.schedule import parse_switch_text
from appliance.store import Store
from appliance.trust.document import ContractDocument, issue_document
from drivers.cards.ndef import card_message
from drivers.cards.virtual_card import VirtualType4Card
from drivers.cards.vpcd import EMULATION_SLOTS, reader_slot_names

pytestmark = pytest.mark.usefixtures("pcscd")


@pytest.fixture
def rig(tmp_path, broker, clock):
    r = Rig(tmp_path, broker, clock)
    yield r
    r.close()


@pytest.fixture
def slots(rig, registry):
    """The meter's three PC/SC slots reporting into the core through their own store connection."""
    from appliance.card_events import CardCallbacks
    from drivers.cards.pcsc import PcscSlots

    store = Store(rig.store_path)
    intake = DocumentIntake(MeterAPI(store, METER, HALF_HOUR, rig.clock), registry.root_public)
    callbacks = CardCallbacks(on_document=intake.on_card_document, on_error=intake.on_card_error)
    with PcscSlots(callbacks, reader_slot_names(), only_named=True, wait_ms=200) as watcher:
        assert watcher.ready.wait(5)
        yield watcher
    store.close()


def card(registry, clock, code, serial, switch="immediate", types="time,energy", company=None, meter_id=METER):
    c = company or registry.companies[code]
    now = clock.now()
    doc = ContractDocument(kind=c.role, action=Action.CONTRACT, company=Company(code, f"{code}社", "mqtt://x"),
                           data_types=parse_data_types(types), switch=parse_switch_text(switch), serial=serial,
                           issued_at=now - timedelta(minutes=5), expires_at=now + timedelta(days=30),
                           meter_id=meter_id)
    return card_message(issue_document(doc, company_key=c.key, certificate=c.cert))


def insert(message, slot, attempts=3):
    """Insert a card, wait until the slot has read it, pull it out (again if pcscd lost the first read,
    e.g. a card of the previous test still leaving the reader)."""
    import time

    for attempt in range(attempts):
        with VirtualType4Card(message, port=slot.port) as c:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not (c.apdus >= 6 and not c.pulled.is_set()):
                time.sleep(0.02)
            if c.apdus >= 6:
                time.sleep(0.3)
                return
        time.sleep(0.5)
    raise AssertionError(f"slot {slot.slot} never read the card")


def refusals(rig):
    """Alerts for refused documents (not for a read pcscd lost, which the meter reports too)."""
    return [a for a in rig.store.alerts() if a["detail"].get("code") != "read_failed"]


def pending(rig):
    return rig.store.changes(("pending",))


@pytest.mark.parametrize("slot", EMULATION_SLOTS, ids=lambda s: f"slot{s.slot}")
def test_a_card_in_each_slot_reaches_the_core_as_a_pending_change(rig, slots, registry, slot):
    rig.commission(supply("A"))
    insert(card(registry, rig.clock, "B", 10 + int(slot.slot), "2026-11-24T00:00+09:00"), slot)
    wait_for(lambda: len(pending(rig)) == 1, what="the card's change stored")
    (ch, book), = pending(rig)
    assert ch.source == f"card:{slot.slot}" and ch.company.code == "B" and ch.serial == 10 + int(slot.slot)
    assert rig.store.last_serial("B") == 10 + int(slot.slot)
    rig.run(1)
    rig.drain()
    ev, = [e for e in rig.companies["B"].events() if e["event"] == "contract_scheduled"]
    assert ev["change_id"] == ch.id and ev["data_types"] == ["time", "energy"]


def test_a_weekly_schedule_built_from_three_cards(rig, slots, registry):
    rig.commission(supply("A", "time,power,energy"))
    insert(card(registry, rig.clock, "B", 1, "weekly:wed@00:00", "time,energy"), EMULATION_SLOTS[0])
    insert(card(registry, rig.clock, "A", 1, "weekly:thu@00:00", "time,power,energy"), EMULATION_SLOTS[1])
    insert(card(registry, rig.clock, "D", 1, "immediate", "energy,voltage"), EMULATION_SLOTS[2])
    wait_for(lambda: len(pending(rig)) == 3, what="three changes stored")
    assert sorted(ch.source for ch, _ in pending(rig)) == ["card:1", "card:2", "card:3"]
    rig.run(48 * 4)  # Monday 00:00 .. Friday 00:00
    rig.drain()
    by_seq = {r["seq"]: r for r in rig.store.readings()}
    b = {p["seq"] for p in rig.received("B")}
    a = {p["seq"] for p in rig.received("A")}
    assert a | b == set(by_seq) and not a & b  # one power company per reading, always
    assert {by_seq[s]["interval_start"][:10] for s in b} == {"2026-11-25"}  # Wednesday only
    assert len(b) == 48
    assert {p["seq"] for p in rig.received("D")} == set(by_seq)  # the data company from the start


def test_forged_and_replayed_cards_store_nothing_and_raise_an_alert(rig, slots, registry):
    from cardkit import certified_company

    from appliance.trust import keys

    rig.commission(supply("A"))
    rogue = certified_company(keys.generate(), "B", "B社", Role.SUPPLY)  # a registry the meter does not trust
    insert(card(registry, rig.clock, "B", 50, company=rogue), EMULATION_SLOTS[0])
    wait_for(lambda: len(refusals(rig)) == 1, what="the forged card refused")
    assert pending(rig) == [] and rig.store.last_serial("B") is None
    genuine = card(registry, rig.clock, "B", 5)
    insert(genuine, EMULATION_SLOTS[1])
    wait_for(lambda: len(pending(rig)) == 1, what="the genuine card stored")
    insert(genuine, EMULATION_SLOTS[2])  # the same card again, in another slot
    insert(card(registry, rig.clock, "B", 6, meter_id="MTR-OTHER"), EMULATION_SLOTS[0])
    wait_for(lambda: len(refusals(rig)) == 3, what="the replayed and the foreign card refused")
    assert len(pending(rig)) == 1 and rig.store.last_serial("B") == 5
    codes = [a["detail"]["code"] for a in reversed(refusals(rig))]
    assert codes == ["untrusted_certificate", "replayed", "wrong_meter"]
    assert all(a["kind"] == "card_rejected" and a["message_ja"] for a in rig.store.alerts())
    assert [a["detail"]["source"] for a in reversed(refusals(rig))] == ["card:1", "card:3", "card:1"]


def test_a_felica_card_through_nfcpy_takes_the_same_path_into_the_core(rig, registry):
    """Slot 4: an NFC reader (nfcpy's udp device), a FeliCa tag emulated by a second nfcpy instance."""
    import socket

    from appliance.card_events import CardCallbacks
    from drivers.cards.nfc import NfcSlot
    from drivers.cards.virtual_tag import VirtualFelicaTag

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rig.commission(supply("A"))
    store = Store(rig.store_path)
    intake = DocumentIntake(MeterAPI(store, METER, HALF_HOUR, rig.clock), registry.root_public)
    callbacks = CardCallbacks(on_document=intake.on_card_document, on_error=intake.on_card_error)
    try:
        with NfcSlot("4", f"udp:localhost:{port}", callbacks) as slot:
            assert slot.opened.wait(5), "nfcpy could not open its udp device"
            with VirtualFelicaTag(card(registry, rig.clock, "B", 44, "2026-11-24T00:00+09:00"), port=port):
                wait_for(lambda: len(pending(rig)) == 1, timeout=20, what="the tag's change stored")
            # the same tag again is a replay: refused with a reason, nothing more stored
            with VirtualFelicaTag(card(registry, rig.clock, "B", 44, "2026-11-25T00:00+09:00"), port=port):
                wait_for(lambda: refusals(rig), timeout=20, what="the replay refused")
    finally:
        store.close()
    (ch, _), = pending(rig)
    assert ch.source == "card:4" and ch.company.code == "B" and ch.serial == 44
    assert refusals(rig)[0]["detail"].get("code") == "replayed"
