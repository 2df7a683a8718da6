"""The meter's checks on signed contract change data, each with its own plain reason."""
from __future__ import annotations

from datetime import timedelta

import pytest
from cardkit import METER, NOW

from appliance.datatypes import DataType
from appliance.domain import Action, Role, SwitchTime, WeeklySlot
from appliance.errors import ChangeRejected
from appliance.trust import (BadSignature, CertificateNotCurrent, CompanyMismatch, DocumentExpired, MalformedDocument,
                             NotYetValid, Replayed, RoleMismatch, UntrustedCertificate, WrongMeter, explain_document,
                             to_change, verify_document)


def verify(pki, raw, *, meter_id=METER, now=NOW, last=None):
    return verify_document(raw, root_public_key=pki.root_public, meter_id=meter_id, now=now,
                           last_serial=lambda code: last)


def test_a_good_document_is_accepted_and_becomes_a_change(pki):
    verified = verify(pki, pki.sign(serial=11), last=10)
    change = to_change(verified, "card:1")
    assert change.kind is Role.SUPPLY and change.action is Action.CONTRACT
    assert change.company.code == "CHUGOKU-EP" and change.company.name == "中国電力"
    assert change.switch.weekly == (WeeklySlot(0, "22:00"), WeeklySlot(5, "07:00"))
    assert change.data_types == (DataType.TIME, DataType.POWER, DataType.ENERGY)
    assert change.serial == 11 and change.source == "card:1" and change.received_at == NOW
    assert change.document["company"]["code"] == "CHUGOKU-EP"


def test_switch_forms_and_optional_fields_convert(pki):
    at = NOW + timedelta(days=3)
    change = to_change(verify(pki, pki.sign(switch=SwitchTime(at=at), meter_id=None, menu="NIGHT-8",
                                            send_interval=timedelta(minutes=30))), "remote")
    assert change.switch.at == at and change.menu == "NIGHT-8" and change.send_interval == timedelta(minutes=30)
    change = to_change(verify(pki, pki.sign(pki.data, switch=SwitchTime(immediate=True), action=Action.ABOLISH,
                                            data_types=())), "card:2")
    assert change.switch.immediate and change.kind is Role.DATA and change.data_types == ()


def test_every_weekday_maps_to_its_number(pki):
    week = tuple(WeeklySlot(d, "06:30") for d in range(7))
    change = to_change(verify(pki, pki.sign(switch=SwitchTime(weekly=week))), "card:1")
    assert [s.day for s in change.switch.weekly] == list(range(7))


@pytest.mark.parametrize("case, rejection, words", [
    ("uncertified key", UntrustedCertificate, "not signed by the registry"),
    ("certificate expired", CertificateNotCurrent, "expired"),
    ("certificate not yet valid", CertificateNotCurrent, "valid only from"),
    ("data company issues supply", RoleMismatch, "cannot issue a supply contract"),
    ("signature altered", BadSignature, "does not match"),
    ("names another company", CompanyMismatch, "names company"),
    ("expired", DocumentExpired, "expired at"),
    ("issued in the future", NotYetValid, "later than now"),
    ("bound to another meter", WrongMeter, "this meter is MTR-0001"),
    ("replayed", Replayed, "already used"),
    ("serial equal to the last", Replayed, "already used"),
    ("not a document", MalformedDocument, "not valid CBOR"),
])
def test_each_bad_case_is_rejected_with_its_reason(pki, make_company, case, rejection, words):
    last = None
    if case == "uncertified key":
        raw = pki.sign(pki.rogue)
    elif case == "certificate expired":
        old = make_company(not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=1))
        raw = pki.sign(old)
    elif case == "certificate not yet valid":
        raw = pki.sign(make_company(not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=9)))
    elif case == "data company issues supply":
        raw = pki.forge({**pki.document(pki.data).to_payload(), "kind": "supply"}, pki.data)
    elif case == "signature altered":
        good = pki.sign()
        raw = good[:-1] + bytes([good[-1] ^ 0x01])
    elif case == "names another company":
        payload = pki.document().to_payload()
        raw = pki.forge({**payload, "company": {**payload["company"], "code": "OTHER-EP"}})
    elif case == "expired":
        raw = pki.sign(issued_at=NOW - timedelta(days=40), expires_at=NOW - timedelta(seconds=1))
    elif case == "issued in the future":
        raw = pki.sign(issued_at=NOW + timedelta(hours=1), expires_at=NOW + timedelta(days=2))
    elif case == "bound to another meter":
        raw = pki.sign(meter_id="MTR-9999")
    elif case in ("replayed", "serial equal to the last"):
        raw, last = pki.sign(serial=10), (12 if case == "replayed" else 10)
    else:
        raw = b"\xff\x00 not a card"
    with pytest.raises(rejection) as caught:
        verify(pki, raw, last=last)
    assert isinstance(caught.value, ChangeRejected)
    assert words in caught.value.reason and caught.value.reason_ja


def test_unbound_document_is_accepted_by_any_meter(pki):
    assert verify(pki, pki.sign(meter_id=None), meter_id="ANY-METER").document.meter_id is None


def test_small_clock_skew_is_tolerated(pki):
    verify(pki, pki.sign(issued_at=NOW + timedelta(minutes=2)))


@pytest.mark.parametrize("payload_change, words", [
    ({"version": 2}, "version 2"),
    ({"switch": {"weekly": [{"day": "mon", "at": "25:00"}]}}, "invalid value"),
    ({"switch": {"weekly": [{"day": "xyz", "at": "10:00"}]}}, "not one of"),
    ({"switch": "2026-12-01T10:00"}, "offset"),
    ({"data_types": ["time", "smell"]}, "unknown data type"),
    ({"company": {"code": "CHUGOKU-EP", "name": "x" * 5000}}, "more than"),
    ({"serial": -1}, "outside"),
    ({"serial": "7"}, "whole number"),
    ({"action": "menu"}, "menu"),
    ({"meter_id": "bad id!"}, "invalid value"),
])
def test_malformed_fields_are_named(pki, payload_change, words):
    raw = pki.forge({**pki.document().to_payload(), **payload_change})
    with pytest.raises(MalformedDocument, match=words):
        verify(pki, raw)


def test_explanation_lists_every_check_and_stops_at_the_first_failure(pki):
    ex = explain_document(pki.sign(meter_id="MTR-9999"), root_public_key=pki.root_public, now=NOW,
                          meter_id=METER, last_serial=lambda c: 1)
    assert not ex.valid and isinstance(ex.error, WrongMeter)
    outcome = {c.name: c.ok for c in ex.checks}
    assert outcome["signature"] is True and outcome["meter binding"] is False and outcome["serial"] is None
    assert ex.document is not None and ex.document.meter_id == "MTR-9999"  # shown, though not trusted


def test_issuer_refuses_a_role_its_certificate_does_not_have(pki):
    with pytest.raises(RoleMismatch):
        pki.sign(pki.data, kind=Role.SUPPLY)
    with pytest.raises(CompanyMismatch):
        from appliance.trust import issue_document

        issue_document(pki.document(), company_key=pki.data.key, certificate=pki.supply.cert)
