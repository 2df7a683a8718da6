"""Signed MQTT commands: confirmation data (embodiment 4) and remote contract changes (embodiment 3)."""
from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from cardkit import METER, NOW

from appliance.datatypes import DataType
from appliance.trust import (BadSignature, CompanyMismatch, DocumentExpired, MalformedDocument, NonceMismatch,
                             Replayed, UntrustedCertificate, WrongMeter, sign_command, verify_command)


def confirm(pki, company=None, *, nonce="n-123", meter_id=METER, now=NOW, data_types=("time", "power"), **kw):
    company = company or pki.supply
    return sign_command("confirm", meter_id=meter_id, company_key=company.key, certificate=company.cert, now=now,
                        nonce=nonce, data_types=list(data_types), **kw)


def check(pki, payload, *, pending="n-123", now=NOW, last=None):
    return verify_command(payload, root_public_key=pki.root_public, meter_id=METER, now=now,
                          pending_nonce=lambda code: pending, last_serial=lambda code: last)


def test_a_matching_confirmation_is_accepted(pki):
    cmd = check(pki, confirm(pki))
    assert cmd.type == "confirm" and cmd.confirm.company_code == "CHUGOKU-EP"
    assert cmd.confirm.data_types == (DataType.TIME, DataType.POWER) and cmd.certificate.role.value == "supply"


def test_payload_is_json_with_a_type_label(pki):
    outer = json.loads(confirm(pki))
    assert outer["type"] == "confirm" and base64.b64decode(outer["cose_sign1"])[:2] == b"\xd2\x84"


@pytest.mark.parametrize("case, rejection", [
    ("other nonce", NonceMismatch),
    ("nothing requested", NonceMismatch),
    ("other meter", WrongMeter),
    ("expired", DocumentExpired),
    ("uncertified", UntrustedCertificate),
    ("tampered", BadSignature),
    ("relabelled", MalformedDocument),
    ("not json", MalformedDocument),
])
def test_bad_confirmations_are_rejected(pki, case, rejection):
    pending = "n-123"
    payload = confirm(pki)
    if case == "other nonce":
        pending = "n-999"
    elif case == "nothing requested":
        pending = None
    elif case == "other meter":
        payload = confirm(pki, meter_id="MTR-0002")
    elif case == "expired":
        payload = confirm(pki, now=NOW - timedelta(minutes=10))
    elif case == "uncertified":
        payload = confirm(pki, pki.rogue)
    elif case == "tampered":
        outer = json.loads(payload)
        signed = bytearray(base64.b64decode(outer["cose_sign1"]))
        signed[-5] ^= 0x10
        payload = json.dumps({**outer, "cose_sign1": base64.b64encode(bytes(signed)).decode()}).encode()
    elif case == "relabelled":
        payload = json.dumps({**json.loads(payload), "type": "contract_change"}).encode()
    else:
        payload = b"\x00\x01binary"
    with pytest.raises(rejection) as caught:
        check(pki, payload, pending=pending)
    assert caught.value.reason and caught.value.reason_ja


def test_remote_contract_change_is_checked_like_a_card(pki):
    doc = pki.sign(serial=20)
    payload = sign_command("contract_change", meter_id=METER, company_key=pki.supply.key,
                           certificate=pki.supply.cert, now=NOW, document=doc)
    cmd = check(pki, payload, last=19)
    assert cmd.document.document.serial == 20 and cmd.document.raw == doc
    with pytest.raises(Replayed):
        check(pki, payload, last=20)


def test_a_company_cannot_relay_another_companys_document(pki):
    payload = sign_command("contract_change", meter_id=METER, company_key=pki.data.key, certificate=pki.data.cert,
                           now=NOW, document=pki.sign())
    with pytest.raises(CompanyMismatch):
        check(pki, payload)


def test_long_lived_commands_are_refused(pki):
    with pytest.raises(MalformedDocument, match="expire within"):
        check(pki, confirm(pki, ttl=timedelta(days=2)))
