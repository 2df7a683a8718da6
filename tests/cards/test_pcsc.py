"""Cards read through a real pcscd with vpcd: each slot, several at once, pulled mid-read, written."""
from __future__ import annotations

import time

import ndef
import pytest
from cardkit import METER, NOW

from appliance.card_events import CardReadError
from appliance.trust import verify_document
from drivers.cards.ndef import NotAContractCard, card_message
from drivers.cards.virtual_card import VirtualType4Card
from drivers.cards.vpcd import EMULATION_SLOTS, reader_slot_names

pytestmark = pytest.mark.usefixtures("pcscd")


@pytest.fixture
def slots(events):
    from drivers.cards.pcsc import PcscSlots

    with PcscSlots(events.callbacks(), reader_slot_names(), only_named=True, wait_ms=200) as watcher:
        assert watcher.ready.wait(5), "the PC/SC monitor did not start"
        yield watcher


@pytest.mark.parametrize("slot", EMULATION_SLOTS, ids=lambda s: f"slot{s.slot}")
def test_a_card_in_each_slot_is_read_and_verifies(pki, slots, events, slot):
    signed = pki.sign(serial=int(slot.slot) + 100)
    with VirtualType4Card(card_message(signed), port=slot.port) as card:
        (_, got_slot, raw), = events.wait_for("document", slot.slot)
        assert got_slot == slot.slot and raw == signed
        assert card.apdus >= 6  # SELECT app, SELECT CC, READ CC, SELECT NDEF, READ NLEN, READ data...
    events.wait_for("removed", slot.slot)
    verified = verify_document(raw, root_public_key=pki.root_public, meter_id=METER, now=NOW,
                               last_serial=lambda c: None)
    assert verified.document.serial == int(slot.slot) + 100
    assert [e[0] for e in events.items if e[1] == slot.slot] == ["inserted", "document", "removed"]


def test_three_cards_at_once_are_each_read_in_their_slot(pki, slots, events):
    signed = {s.slot: pki.sign(serial=200 + int(s.slot)) for s in EMULATION_SLOTS}
    cards = [VirtualType4Card(card_message(signed[s.slot]), port=s.port).insert() for s in EMULATION_SLOTS]
    try:
        for s in EMULATION_SLOTS:
            assert events.wait_for("document", s.slot)[0][2] == signed[s.slot]
    finally:
        for card in cards:
            card.remove()
    for s in EMULATION_SLOTS:
        events.wait_for("removed", s.slot)
    assert not events.of("error")


@pytest.mark.parametrize("pull_after", [1, 3, 5, 6, 7])
def test_a_card_pulled_mid_read_gives_one_clean_error_and_no_document(pki, slots, events, pull_after):
    message = card_message(pki.sign())  # ~650 bytes: READ BINARY in three chunks (APDUs 6-8)
    card = VirtualType4Card(message, port=EMULATION_SLOTS[0].port, pull_after=pull_after).insert()
    (_, _, error), = events.wait_for("error", "1")
    assert isinstance(error, CardReadError) and ("removed" in error.reason or "answer" in error.reason)
    assert error.reason_ja
    events.wait_for("removed", "1")
    card.remove()
    assert not events.of("document")


def test_a_foreign_card_is_reported_not_delivered(slots, events):
    foreign = b"".join(ndef.message_encoder([ndef.UriRecord("https://example.com")]))
    with VirtualType4Card(foreign, port=EMULATION_SLOTS[1].port):
        (_, _, error), = events.wait_for("error", "2")
    events.wait_for("removed", "2")
    assert isinstance(error, NotAContractCard) and "first record" in error.reason
    assert not events.of("document")


def test_a_company_writes_a_blank_card_with_update_binary_and_the_meter_reads_it(pki):
    from drivers.cards.pcsc import read_card, write_card

    signed = pki.sign(serial=300)
    written: list[bytes] = []
    slot = EMULATION_SLOTS[2]
    with VirtualType4Card(b"", port=slot.port, on_write=written.append) as card:
        with pytest.raises(NotAContractCard, match="blank"):
            read_card(slot.reader, wait=5)
        write_card(slot.reader, card_message(signed), wait=5)
        assert card.message == card_message(signed) and written[-1] == card_message(signed)
        message, stats = read_card(slot.reader)
    assert message == card_message(signed) and stats.exchanges >= 6


def test_read_latency_is_dominated_by_the_apdu_exchange(pki):
    """Guards the TCP_QUICKACK fix: without it every APDU waited ~40 ms for a delayed ACK."""
    from drivers.cards.pcsc import read_card

    slot = EMULATION_SLOTS[0]
    with VirtualType4Card(card_message(pki.sign()), port=slot.port):
        read_card(slot.reader, wait=5)
        started = time.perf_counter()
        _message, stats = read_card(slot.reader)
    assert stats.exchange_seconds / stats.exchanges < 0.02
    assert time.perf_counter() - started < 1.0
