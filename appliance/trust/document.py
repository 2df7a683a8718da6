"""Contract change data (契約変更データ 56B / データ提供変更データ 56C) as a signed document.

The wire form is a CBOR map with the field names of interfaces.md section 3, signed as a
COSE_Sign1 by the company, with the company certificate in the protected header (so the
signature covers which certificate the company claims).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.clock import iso
from appliance.datatypes import DataType, UnknownDataType, parse_data_types
from appliance.domain import Action, Company, Role, SwitchTime, WeeklySlot

from . import fields
from .certificate import parse_certificate
from .cose import sign1
from .keys import public_raw
from .rejections import CompanyMismatch, MalformedDocument, RoleMismatch

VERSION = 1
CERT_HEADER = "cert"  # protected-header label carrying the company certificate
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
HHMM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
MAX_WEEKLY = 21  # three changes a day, every day: a full weekly schedule
MAX_SEND_INTERVAL = 7 * 86400
MAX_MEASURE_INTERVAL = 86400  # a day's aggregate at most: well within the readings' retention
MAX_MENU = 32  # a tariff menu's code


@dataclass(frozen=True)
class ContractDocument:
    """What a company asks the meter to do: contract, abolish or change menu, and when."""

    kind: Role
    action: Action
    company: Company
    data_types: tuple[DataType, ...]
    switch: SwitchTime
    serial: int
    issued_at: datetime
    expires_at: datetime
    menu: str | None = None
    meter_id: str | None = None
    send_interval: timedelta | None = None
    measure_interval: timedelta | None = None  # added: the contract's own measurement interval (56A)
    version: int = VERSION

    def to_payload(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "kind": self.kind.value,
            "action": self.action.value,
            "company": {"code": self.company.code, "name": self.company.name, "server": self.company.server},
            "data_types": [d.value for d in self.data_types],
            "switch": switch_to_wire(self.switch),
            "serial": self.serial,
            "issued_at": iso(self.issued_at),
            "expires_at": iso(self.expires_at),
        }
        if self.menu is not None:
            out["menu"] = self.menu
        if self.meter_id is not None:
            out["meter_id"] = self.meter_id
        if self.send_interval is not None:
            out["send_interval"] = int(self.send_interval.total_seconds())
        if self.measure_interval is not None:
            out["measure_interval"] = int(self.measure_interval.total_seconds())
        return out

    @classmethod
    def from_payload(cls, payload: Any) -> "ContractDocument":
        """Read and check every field; unknown extra fields are allowed (interfaces.md lets them grow)."""
        m = fields.as_map(payload, "contract change data")
        version = fields.integer(m, "version", low=1, high=1000)
        if version != VERSION:
            raise MalformedDocument(f"document version {version} is not supported (this meter reads {VERSION})")
        kind = _enum(Role, fields.required_text(m, "kind"), "kind")
        action = _enum(Action, fields.required_text(m, "action"), "action")
        c = fields.as_map(m.get("company"), "company")
        company = Company(
            code=fields.required_text(c, "code", pattern=fields.COMPANY_CODE),
            name=fields.required_text(c, "name"),
            server=fields.text(c, "server", optional=True) or "",
        )
        raw_types = m.get("data_types", [])
        if not isinstance(raw_types, list) or len(raw_types) > len(DataType) * 2:
            raise MalformedDocument("field 'data_types' must be a short list of data type names")
        if action is Action.ABOLISH and not raw_types:
            data_types: tuple[DataType, ...] = ()
        else:
            try:
                data_types = parse_data_types([t if isinstance(t, str) else repr(t) for t in raw_types])
            except UnknownDataType as exc:
                raise MalformedDocument(str(exc)) from None
        menu = fields.text(m, "menu", optional=True, max_len=MAX_MENU)
        if action is Action.MENU and not menu:
            raise MalformedDocument("a menu change must name the tariff 'menu'")
        interval = fields.integer(m, "send_interval", low=1, high=MAX_SEND_INTERVAL, optional=True)
        measure = fields.integer(m, "measure_interval", low=1, high=MAX_MEASURE_INTERVAL, optional=True)
        issued_at, expires_at = fields.timestamp(m, "issued_at"), fields.timestamp(m, "expires_at")
        if expires_at <= issued_at:
            raise MalformedDocument("the document expires before it was issued")
        return cls(
            version=version,
            kind=kind,
            action=action,
            company=company,
            data_types=data_types,
            switch=switch_from_wire(m.get("switch")),
            serial=fields.integer(m, "serial"),  # type: ignore[arg-type]
            issued_at=issued_at,
            expires_at=expires_at,
            menu=menu,
            meter_id=fields.text(m, "meter_id", pattern=fields.METER_ID, optional=True),
            send_interval=timedelta(seconds=interval) if interval is not None else None,
            measure_interval=timedelta(seconds=measure) if measure is not None else None,
        )


def switch_from_wire(value: Any) -> SwitchTime:
    """``"immediate"``, an ISO-8601 date-time with offset, or ``{"weekly": [{"day": "mon", "at": "22:00"}]}``."""
    if value == "immediate":
        return SwitchTime(immediate=True)
    if isinstance(value, str):
        return SwitchTime(at=fields.parse_time(value[:40], "switch"))
    if isinstance(value, dict) and set(value) == {"weekly"} and isinstance(value["weekly"], list):
        rules = value["weekly"]
        if not 1 <= len(rules) <= MAX_WEEKLY:
            raise MalformedDocument(f"a weekly switch needs 1 to {MAX_WEEKLY} entries")
        slots = []
        for rule in rules:
            r = fields.as_map(rule, "weekly switch entry")
            day = fields.required_text(r, "day", max_len=3)
            if day not in DAYS:
                raise MalformedDocument(f"weekly switch day {day!r} is not one of {', '.join(DAYS)}")
            at = fields.required_text(r, "at", pattern=HHMM, max_len=5)
            slots.append(WeeklySlot(day=DAYS.index(day), at=at))
        return SwitchTime(weekly=tuple(slots))
    raise MalformedDocument('field \'switch\' must be "immediate", an ISO-8601 date-time or {"weekly": [...]}')


def switch_to_wire(switch: SwitchTime) -> Any:
    if switch.immediate:
        return "immediate"
    if switch.weekly:
        return {"weekly": [{"day": DAYS[s.day], "at": s.at} for s in switch.weekly]}
    if switch.at is None:
        raise ValueError("a switch time needs immediate, at or weekly")
    return iso(switch.at)


def issue_document(document: ContractDocument, *, company_key: Ed25519PrivateKey, certificate: bytes) -> bytes:
    """Sign a document as the company. Refuses what a meter would refuse for the company's own mistakes."""
    cert = parse_certificate(certificate)
    if cert.public_key != public_raw(company_key):
        raise CompanyMismatch("the signing key is not the key in the company certificate")
    if cert.company_code != document.company.code:
        raise CompanyMismatch(
            f"the document names company {document.company.code} but the certificate is for {cert.company_code}")
    if cert.role is not document.kind:
        raise RoleMismatch(f"a {cert.role.value} company cannot issue a {document.kind.value} contract")
    payload = cbor2.dumps(document.to_payload(), canonical=True)
    ContractDocument.from_payload(cbor2.loads(payload))  # the meter's own parser must accept it
    return sign1(payload, company_key, {CERT_HEADER: certificate})


def _enum(cls: Any, value: str, key: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        valid = ", ".join(e.value for e in cls)
        raise MalformedDocument(f"field {key!r} = {value!r} is not one of {valid}") from None
