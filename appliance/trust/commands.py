"""Signed MQTT commands on ``meters/{meter_id}/commands`` (embodiments 3 and 4).

The MQTT payload is JSON: ``{"type": "confirm" | "contract_change", "cose_sign1": "<base64>"}``.
``type`` outside is only a routing hint; the signed COSE_Sign1 payload (CBOR) repeats it and is
what counts. The envelope, certificate and signature are those of contract documents:

* ``confirm`` (confirmation data, 契約確認データ): ``nonce`` echoing the meter's ``confirm_request``,
  ``company_code`` and ``data_types`` as the company's own records say.
* ``contract_change``: ``document``, the signed contract change data, verified exactly like a card.
* ``breaker`` (JP6794864B2: the grid operator's MDMS opens or closes the meter's supply): ``action``
  ``open`` | ``close``, ``reason``, ``serial``. Only a certificate with the ``grid_operator`` role
  may sign it; its ``serial`` is replay-protected like a contract document's (strictly increasing per
  signer, on top of the short expiry).

All carry ``meter_id`` (always bound: a command is for one meter), ``issued_at`` and a short
``expires_at``.
"""
from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.clock import iso
from appliance.datatypes import DataType, UnknownDataType, parse_data_types

from . import fields
from .certificate import CompanyCertificate, GridRole, parse_certificate
from .cose import MAX_ENVELOPE_BYTES, sign1
from .document import CERT_HEADER
from .keys import public_raw
from .rejections import CompanyMismatch, MalformedDocument, NonceMismatch, NotGridOperator, Replayed
from .verify import (LastSerial, VerifiedDocument, check_company, check_meter, check_time_window, open_envelope,
                     verify_document)

CONFIRM = "confirm"
CONTRACT_CHANGE = "contract_change"
BREAKER = "breaker"
COMMAND_TYPES = (CONFIRM, CONTRACT_CHANGE, BREAKER)
BREAKER_ACTIONS = ("open", "close")
MAX_REASON = 200
DEFAULT_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(hours=1)  # a command is meant for now; a long-lived one widens the replay window
MAX_NONCE = 64


@dataclass(frozen=True)
class ConfirmData:
    """What the company's records say the contract is; the meter compares it with its store."""

    nonce: str
    company_code: str
    data_types: tuple[DataType, ...]


@dataclass(frozen=True)
class BreakerOrder:
    """The grid operator's order to open or close the supply (remote supply switching)."""

    action: str  # open | close
    reason: str
    serial: int
    operator_code: str


@dataclass(frozen=True)
class VerifiedCommand:
    type: str
    meter_id: str
    certificate: CompanyCertificate
    issued_at: datetime
    expires_at: datetime
    confirm: ConfirmData | None = None
    document: VerifiedDocument | None = None  # for contract_change
    breaker: BreakerOrder | None = None  # for breaker


def sign_command(command_type: str, *, meter_id: str, company_key: Ed25519PrivateKey, certificate: bytes,
                 now: datetime, ttl: timedelta = DEFAULT_TTL, nonce: str | None = None,
                 data_types: list[str] | tuple[DataType, ...] | None = None, document: bytes | None = None,
                 action: str | None = None, reason: str = "", serial: int | None = None) -> bytes:
    """Build the MQTT payload of a signed command, as a company server sends it."""
    cert = parse_certificate(certificate)
    if cert.public_key != public_raw(company_key):
        raise CompanyMismatch("the signing key is not the key in the company certificate")
    body: dict[str, Any] = {
        "type": command_type,
        "meter_id": meter_id,
        "company_code": cert.company_code,
        "issued_at": iso(now),
        "expires_at": iso(now + ttl),
    }
    if command_type == CONFIRM:
        if nonce is None or data_types is None:
            raise ValueError("a confirm command needs the nonce and the data types")
        body["nonce"] = nonce
        body["data_types"] = [DataType(d).value for d in data_types]
    elif command_type == CONTRACT_CHANGE:
        if document is None:
            raise ValueError("a contract_change command needs the signed document")
        body["document"] = bytes(document)
    elif command_type == BREAKER:
        if action not in BREAKER_ACTIONS or serial is None:
            raise ValueError("a breaker command needs an action (open or close) and a serial")
        body.update(action=action, reason=reason, serial=serial)
    else:
        raise ValueError(f"unknown command type {command_type!r} (valid: {', '.join(COMMAND_TYPES)})")
    signed = sign1(cbor2.dumps(body, canonical=True), company_key, {CERT_HEADER: certificate})
    return json.dumps({"type": command_type, "cose_sign1": base64.b64encode(signed).decode()}).encode()


def verify_command(payload: bytes, *, root_public_key: Ed25519PublicKey | bytes, meter_id: str, now: datetime,
                   pending_nonce: Callable[[str], str | None] | None = None,
                   last_serial: LastSerial | None = None) -> VerifiedCommand:
    """Accept a command only if every check holds (certificate, signature, expiry, meter, nonce or document).

    ``pending_nonce(company_code)`` is the nonce of the meter's open ``confirm_request`` to that
    company, or None; ``last_serial`` is as for :func:`verify_document`.
    """
    hint, signed = _unwrap_json(payload)
    _env, cert, body = open_envelope(signed, root_public_key=root_public_key, now=now, what="command")
    m = fields.as_map(body, "command")
    command_type = fields.required_text(m, "type", max_len=32)
    if command_type not in COMMAND_TYPES or command_type != hint:
        raise MalformedDocument(f"command type {command_type!r} is unknown or differs from its label {hint!r}")
    check_company(fields.required_text(m, "company_code", pattern=fields.COMPANY_CODE), cert, "command")
    issued_at, expires_at = fields.timestamp(m, "issued_at"), fields.timestamp(m, "expires_at")
    if not timedelta(0) < expires_at - issued_at <= MAX_TTL:
        raise MalformedDocument(f"a command must expire within {MAX_TTL} of being issued")
    check_time_window(issued_at, expires_at, now, "command")
    bound = fields.required_text(m, "meter_id", pattern=fields.METER_ID)
    check_meter(bound, meter_id, "command")
    common = dict(type=command_type, meter_id=bound, certificate=cert, issued_at=issued_at, expires_at=expires_at)
    if command_type == CONFIRM:
        return VerifiedCommand(**common, confirm=_confirm(m, cert, pending_nonce))
    if command_type == BREAKER:
        return VerifiedCommand(**common, breaker=_breaker(m, cert, last_serial))
    raw_doc = m.get("document")
    if not isinstance(raw_doc, bytes):
        raise MalformedDocument("a contract_change command carries no signed document")
    verified = verify_document(raw_doc, root_public_key=root_public_key, meter_id=meter_id, now=now,
                               last_serial=last_serial or (lambda _code: None))
    check_company(verified.document.company.code, cert, "command's document")
    return VerifiedCommand(**common, document=verified)


def _confirm(m: dict[str, Any], cert: CompanyCertificate, pending_nonce: Callable[[str], str | None] | None) -> ConfirmData:
    nonce = fields.required_text(m, "nonce", max_len=MAX_NONCE)
    raw_types = m.get("data_types")
    if not isinstance(raw_types, list) or not all(isinstance(t, str) for t in raw_types):
        raise MalformedDocument("field 'data_types' must be a list of data type names")
    try:
        data_types = parse_data_types(raw_types)
    except UnknownDataType as exc:
        raise MalformedDocument(str(exc)) from None
    expected = pending_nonce(cert.company_code) if pending_nonce else None
    if expected is None:
        raise NonceMismatch(f"no confirmation was requested from {cert.company_code}: an unsolicited or replayed answer")
    if nonce != expected:
        raise NonceMismatch(f"the confirmation from {cert.company_code} answers another request (nonce differs)")
    return ConfirmData(nonce=nonce, company_code=cert.company_code, data_types=data_types)


def _breaker(m: dict[str, Any], cert: CompanyCertificate, last_serial: LastSerial | None) -> BreakerOrder:
    if cert.role is not GridRole.GRID_OPERATOR:
        raise NotGridOperator(f"{cert.company_code} is certified as a {cert.role.value} company: only the grid "
                              "operator may open or close the supply")
    action = fields.required_text(m, "action", max_len=8)
    if action not in BREAKER_ACTIONS:
        raise MalformedDocument(f"breaker action {action!r} is not one of {', '.join(BREAKER_ACTIONS)}")
    serial = fields.integer(m, "serial", low=0)
    last = last_serial(cert.company_code) if last_serial else None
    if last is not None and serial <= last:  # type: ignore[operator]
        raise Replayed(f"breaker command serial {serial} from {cert.company_code} was already used (last seen {last})")
    reason = fields.text(m, "reason", optional=True, max_len=MAX_REASON) or ""
    return BreakerOrder(action=action, reason=reason, serial=serial, operator_code=cert.company_code)  # type: ignore[arg-type]


def _unwrap_json(payload: bytes) -> tuple[str, bytes]:
    if not isinstance(payload, (bytes, bytearray)) or len(payload) > 2 * MAX_ENVELOPE_BYTES:
        raise MalformedDocument("the command is not a JSON payload of a sensible size")
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedDocument("the command is not valid UTF-8 JSON") from None
    m = fields.as_map(obj, "command envelope")
    hint = fields.required_text(m, "type", max_len=32)
    b64 = fields.required_text(m, "cose_sign1", max_len=2 * MAX_ENVELOPE_BYTES)
    try:
        return hint, base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedDocument("the command's 'cose_sign1' is not base64") from None
