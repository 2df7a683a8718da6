"""The contract data read from cards (the Fig. 9(b) list) is kept in the meter's store, through MeterAPI."""
from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit: the card tests' PKI and documents

from cardkit import METER, NOW, Pki, new_pki  # noqa: E402

from appliance.api import MeterAPI  # noqa: E402
from appliance.clock import ManualClock  # noqa: E402
from appliance.domain import Action  # noqa: E402
from appliance.errors import ChangeRejected  # noqa: E402
from appliance.store import Store  # noqa: E402

HALF_HOUR = timedelta(minutes=30)


@pytest.fixture(scope="module")
def pki() -> Pki:
    return new_pki()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


def open_api(path: Path, clock: ManualClock) -> MeterAPI:
    return MeterAPI(Store(path), METER, HALF_HOUR, clock)


def listed(api: MeterAPI) -> list[tuple]:
    return [(c.code, c.menu, c.kind, c.serial, c.slot) for c in api.stored_cards()]


def test_card_documents_are_stored_replaced_kept_over_a_restart_and_forgotten(tmp_path, pki, clock):
    path = tmp_path / "meter.db"
    api = open_api(path, clock)
    supply, data = pki.sign(serial=10), pki.sign(pki.data, serial=3)
    night = pki.sign(action=Action.MENU, menu="夜間", serial=11)
    api.remember_card(supply, "1")
    clock.advance(60)
    api.remember_card(data, "2")
    api.remember_card(night, "1")
    assert listed(api) == [("CHUGOKU-EP", None, "supply", 10, "1"), ("DATA-A", None, "data", 3, "2"),
                           ("CHUGOKU-EP", "夜間", "supply", 11, "1")]
    first = api.stored_cards()[0]
    assert first.document == supply and first.read_at == NOW

    # A newer read of the same company and menu replaces the older one and moves to the end.
    clock.advance(300)
    newer = pki.sign(serial=12)
    api.remember_card(newer, "3")
    assert listed(api) == [("DATA-A", None, "data", 3, "2"), ("CHUGOKU-EP", "夜間", "supply", 11, "1"),
                           ("CHUGOKU-EP", None, "supply", 12, "3")]
    assert api.stored_cards()[-1].document == newer and api.stored_cards()[-1].read_at == clock.now()

    # The meter restarts: a new connection on the same file sees the same documents, bytes and times.
    before = api.stored_cards()
    api.store.close()
    api = open_api(path, clock)
    assert api.stored_cards() == before

    assert api.forget_card("CHUGOKU-EP", "夜間") is True
    assert api.forget_card("CHUGOKU-EP", "夜間") is False
    assert listed(api) == [("DATA-A", None, "data", 3, "2"), ("CHUGOKU-EP", None, "supply", 12, "3")]
    api.store.close()


@pytest.mark.parametrize("what", ["empty", "text", "cbor", "certificate", "signed_not_a_document"])
def test_bytes_that_are_not_a_contract_document_are_refused_and_not_stored(tmp_path, pki, clock, what):
    raw = {"empty": b"", "text": b"not a card", "cbor": b"\xa1\x61a\x01",
           "certificate": pki.supply.cert,  # a COSE_Sign1, but the registry's, of a certificate
           "signed_not_a_document": pki.forge({"hello": "world"})}[what]
    api = open_api(tmp_path / "meter.db", clock)
    with pytest.raises(ChangeRejected) as err:
        api.remember_card(raw, "1")
    assert str(err.value).startswith("slot 1: not contract card data, not stored: ")
    assert api.stored_cards() == []
    api.store.close()
