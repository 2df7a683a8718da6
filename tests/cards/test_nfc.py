"""A FeliCa (Type 3) contract tag read through nfcpy's udp device, emulated by a second nfcpy instance."""
from __future__ import annotations

import ndef
import pytest
from cardkit import METER, NOW

from appliance.card_events import CardReadError
from appliance.trust import verify_document
from drivers.cards.ndef import NotAContractCard, card_message
from drivers.cards.nfc import NfcSlot, read_once
from drivers.cards.virtual_tag import VirtualFelicaTag


@pytest.fixture
def nfc_slot(events, udp_port):
    with NfcSlot("4", f"udp:localhost:{udp_port}", events.callbacks()) as slot:
        assert slot.opened.wait(5), "nfcpy could not open its udp device"
        yield udp_port


def test_a_felica_tag_is_read_and_verifies(pki, events, nfc_slot):
    signed = pki.sign(serial=400)
    with VirtualFelicaTag(card_message(signed), port=nfc_slot):
        (_, slot, raw), = events.wait_for("document", "4")
    assert slot == "4" and raw == signed
    events.wait_for("removed", "4")
    verified = verify_document(raw, root_public_key=pki.root_public, meter_id=METER, now=NOW,
                               last_serial=lambda c: 399)
    assert verified.document.serial == 400


def test_a_tag_pulled_mid_read_gives_a_clean_error_and_no_document(pki, events, nfc_slot):
    with VirtualFelicaTag(card_message(pki.sign()), port=nfc_slot, pull_after=3):
        (_, _, error), = events.wait_for("error", "4")
    assert isinstance(error, CardReadError) and "removed" in error.reason and error.reason_ja
    events.wait_for("removed", "4")
    assert not events.of("document")


def test_a_foreign_tag_is_reported(events, nfc_slot):
    foreign = b"".join(ndef.message_encoder([ndef.TextRecord("hello")]))
    with VirtualFelicaTag(foreign, port=nfc_slot):
        (_, _, error), = events.wait_for("error", "4")
    assert isinstance(error, NotAContractCard)


def test_a_company_writes_a_felica_tag_and_reads_it_back(pki, udp_port):
    from drivers.cards.cli import _nfc_write

    signed = pki.sign(serial=401)
    with VirtualFelicaTag(card_message(pki.sign(serial=1)), port=udp_port) as tag:
        _nfc_write(f"udp:localhost:{udp_port}", card_message(signed))
        assert tag.message == card_message(signed)
        assert read_once(f"udp:localhost:{udp_port}") == card_message(signed)
