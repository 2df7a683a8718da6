"""Hostile bytes from a card or the network end in a clear rejection: never a crash, never acceptance."""
from __future__ import annotations

import base64
import json

import cbor2
import ndef
import pytest
from cardkit import METER, NOW
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.card_events import CardReadError
from appliance.trust import (
    DocumentRejected,
    sign_command,
    verify_command,
    verify_document,
)
from drivers.cards.ndef import (
    MAX_MESSAGE,
    RECORD_TYPE,
    CapabilityContainer,
    NotAContractCard,
    Type3Attributes,
    card_message,
    document_from_message,
    type4_files,
)
from drivers.cards.type4 import Type4Applet, read_ndef

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def verify(pki, raw):
    return verify_document(raw, root_public_key=pki.root_public, meter_id=METER, now=NOW,
                           last_serial=lambda code: None)


def card_to_document(pki, message: bytes):
    """The meter's whole path from card bytes to a verified document."""
    return verify(pki, document_from_message(message))


@pytest.fixture(scope="module")
def good(pki):
    return pki.sign()


@FUZZ
@given(data=st.data())
def test_a_bit_flip_anywhere_in_a_valid_document_is_rejected(pki, good, data):
    bit = data.draw(st.integers(0, len(good) * 8 - 1))
    flipped = bytearray(good)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DocumentRejected):
        verify(pki, bytes(flipped))


@FUZZ
@given(data=st.data())
def test_a_bit_flip_anywhere_on_the_card_is_rejected(pki, good, data):
    message = card_message(good)
    bit = data.draw(st.integers(0, len(message) * 8 - 1))
    flipped = bytearray(message)
    flipped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DocumentRejected):
        card_to_document(pki, bytes(flipped))


@FUZZ
@given(cut=st.integers(0, 2000))
def test_truncated_ndef_is_rejected(pki, good, cut):
    message = card_message(good)
    cut = cut % len(message)
    with pytest.raises(NotAContractCard):
        document_from_message(message[:cut])


@pytest.mark.parametrize("record", [
    ndef.TextRecord("契約カード", "ja"),
    ndef.UriRecord("https://example.com/contract"),
    ndef.Record("application/json", "", b'{"kind":"supply"}'),
    ndef.Record("urn:nfc:ext:example.com:contract", "", b"\xd2\x84"),
])
def test_wrong_record_types_are_not_contract_cards(record):
    message = b"".join(ndef.message_encoder([record]))
    with pytest.raises(NotAContractCard, match="first record"):
        document_from_message(message)


def test_a_contract_record_after_another_record_is_not_taken(good):
    message = b"".join(ndef.message_encoder([ndef.UriRecord("https://example.com"), ndef.Record(RECORD_TYPE, "", good)]))
    with pytest.raises(NotAContractCard):
        document_from_message(message)


@FUZZ
@given(blob=st.binary(max_size=1200))
def test_random_card_bytes_are_rejected_cleanly(pki, blob):
    with pytest.raises(DocumentRejected):
        card_to_document(pki, blob)


@FUZZ
@given(blob=st.binary(max_size=900))
def test_random_payload_inside_a_valid_record_is_rejected(pki, blob):
    with pytest.raises(DocumentRejected):
        card_to_document(pki, b"".join(ndef.message_encoder([ndef.Record(RECORD_TYPE, "", blob)])))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=300)
    | st.binary(max_size=64),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20)


@FUZZ
@given(changes=st.dictionaries(
    st.sampled_from(["version", "kind", "action", "company", "data_types", "switch", "menu", "meter_id", "serial",
                     "issued_at", "expires_at", "send_interval", "extra"]), json_values, min_size=1, max_size=4))
def test_signed_but_odd_fields_never_crash_the_parser(pki, changes):
    """A certified company's own key signing nonsense (a buggy issuer): rejected or accepted, never a crash."""
    raw = pki.forge({**pki.document().to_payload(), **changes})
    try:
        verify(pki, raw)
    except DocumentRejected as exc:
        assert exc.reason and exc.reason_ja


@pytest.mark.parametrize("field, value", [
    ("name", "電" * 2000), ("server", "x" * 10_000), ("code", "C" * 33)])
def test_oversize_fields_are_refused(pki, field, value):
    payload = pki.document().to_payload()
    with pytest.raises(DocumentRejected, match="more than|invalid value"):
        verify(pki, pki.forge({**payload, "company": {**payload["company"], field: value}}))


def test_issuing_refuses_a_card_over_888_bytes(pki):
    from appliance.domain import SwitchTime, WeeklySlot
    from appliance.trust import DocumentTooLarge

    week = tuple(WeeklySlot(d % 7, f"{h:02d}:00") for d, h in zip(range(21), range(21)))
    raw = pki.sign(switch=SwitchTime(weekly=week), menu="M" * 32)
    with pytest.raises(DocumentTooLarge, match=f"at most {MAX_MESSAGE}"):
        card_message(raw + bytes(300))


@FUZZ
@given(blob=st.binary(min_size=0, max_size=40))
def test_capability_container_and_felica_attribute_parsers_reject_cleanly(blob):
    for parse in (CapabilityContainer.from_bytes, Type3Attributes.from_block):
        try:
            parse(blob)
        except NotAContractCard as exc:
            assert exc.reason


@FUZZ
@given(apdus=st.lists(st.binary(max_size=300), max_size=8))
def test_the_card_side_answers_any_apdu_with_a_status_word(good, apdus):
    applet = Type4Applet(type4_files(card_message(good)))
    for apdu in apdus:
        assert len(applet.process(apdu)) >= 2


@FUZZ
@given(cc=st.binary(min_size=15, max_size=15), body=st.binary(max_size=900))
def test_reading_a_card_with_damaged_files_fails_cleanly(cc, body):
    files = {0xE103: cc, int.from_bytes(cc[9:11], "big"): body}
    try:
        applet = Type4Applet(files)
    except NotAContractCard:
        return
    try:
        message, _ = read_ndef(lambda apdu: (applet.process(apdu)[:-2], int.from_bytes(applet.process(apdu)[-2:], "big")))
    except (NotAContractCard, CardReadError):
        return
    assert len(message) <= MAX_MESSAGE


@FUZZ
@given(data=st.data())
def test_a_bit_flip_in_a_signed_command_is_rejected(pki, data):
    payload = sign_command("confirm", meter_id=METER, company_key=pki.supply.key, certificate=pki.supply.cert,
                           now=NOW, nonce="n-1", data_types=["time"])
    bit = data.draw(st.integers(0, len(payload) * 8 - 1))
    flipped = bytearray(payload)
    flipped[bit // 8] ^= 1 << (bit % 8)
    try:
        verify_command(bytes(flipped), root_public_key=pki.root_public, meter_id=METER, now=NOW,
                       pending_nonce=lambda c: "n-1")
    except DocumentRejected:
        return
    # only a flip JSON itself ignores (e.g. in whitespace-equivalent escapes) may pass, and then unchanged
    assert json.loads(flipped)["cose_sign1"] == json.loads(payload)["cose_sign1"]


@FUZZ
@given(body=json_values, label=st.sampled_from(["confirm", "contract_change", "x"]), inner=st.binary(max_size=300))
def test_random_command_payloads_are_rejected(pki, body, label, inner):
    wrapped = {"type": label, "cose_sign1": base64.b64encode(inner).decode()}
    for payload in (json.dumps(body, default=repr).encode(), cbor2.dumps(body), json.dumps(wrapped).encode()):
        with pytest.raises(DocumentRejected):
            verify_command(payload, root_public_key=pki.root_public, meter_id=METER, now=NOW)
