"""Helpers for the contract card tests: a small PKI, document factories, a recorder of card events."""
from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import cbor2

from appliance.clock import JST
from appliance.datatypes import DataType
from appliance.domain import Action, Company, Role, SwitchTime, WeeklySlot
from appliance.trust import keys
from appliance.trust.certificate import issue_certificate
from appliance.trust.cose import sign1
from appliance.trust.document import CERT_HEADER, ContractDocument, issue_document

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=JST)
METER = "MTR-0001"


@dataclass
class CertifiedCompany:
    key: Any
    cert: bytes
    code: str
    name: str
    role: Role


@dataclass
class Pki:
    root: Any
    root_public: bytes
    supply: CertifiedCompany
    data: CertifiedCompany
    rogue: CertifiedCompany  # certified by a registry the meter does not trust

    def document(self, company: CertifiedCompany | None = None, **changes: Any) -> ContractDocument:
        company = company or self.supply
        doc = ContractDocument(
            kind=company.role, action=Action.CONTRACT,
            company=Company(company.code, company.name, "mqtts://broker.example:8883"),
            data_types=(DataType.TIME, DataType.POWER, DataType.ENERGY),
            switch=SwitchTime(weekly=(WeeklySlot(0, "22:00"), WeeklySlot(5, "07:00"))),
            serial=10, issued_at=NOW - timedelta(hours=1), expires_at=NOW + timedelta(days=30), meter_id=METER)
        return replace(doc, **changes)

    def sign(self, company: CertifiedCompany | None = None, **changes: Any) -> bytes:
        company = company or self.supply
        return issue_document(self.document(company, **changes), company_key=company.key, certificate=company.cert)

    def forge(self, payload: dict[str, Any], company: CertifiedCompany | None = None) -> bytes:
        """Sign any payload as a company, bypassing the issuer's own checks (what an attacker could do)."""
        company = company or self.supply
        return sign1(cbor2.dumps(payload), company.key, {CERT_HEADER: company.cert})


def new_pki() -> Pki:
    """A registry with a certified power company and data company, and a rogue certified elsewhere."""
    root = keys.generate()
    return Pki(root=root, root_public=keys.public_raw(root),
               supply=certified_company(root, "CHUGOKU-EP", "中国電力", Role.SUPPLY),
               data=certified_company(root, "DATA-A", "データ活用A", Role.DATA),
               rogue=certified_company(keys.generate(), "CHUGOKU-EP", "中国電力", Role.SUPPLY))


def certified_company(registry: Any, code: str, name: str, role: Role, **window: datetime) -> CertifiedCompany:
    key = keys.generate()
    cert = issue_certificate(registry, company_code=code, name=name, role=role, public_key=key.public_key(),
                             not_before=window.get("not_before", NOW - timedelta(days=30)),
                             not_after=window.get("not_after", NOW + timedelta(days=365)))
    return CertifiedCompany(key, cert, code, name, role)


class Events:
    """Records card callbacks and lets a test wait for them."""

    def __init__(self) -> None:
        self.items: list[tuple] = []
        self.cond = threading.Condition()

    def add(self, *item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def callbacks(self):
        from appliance.card_events import CardCallbacks

        return CardCallbacks(on_document=lambda s, d: self.add("document", s, d),
                             on_error=lambda s, e: self.add("error", s, e),
                             on_removed=lambda s: self.add("removed", s),
                             on_inserted=lambda s: self.add("inserted", s))

    def wait_for(self, kind: str, slot: str, count: int = 1, timeout: float = 8.0) -> list[tuple]:
        with self.cond:
            ok = self.cond.wait_for(lambda: len(self.of(kind, slot)) >= count, timeout)
        assert ok, f"no {kind} event for slot {slot} within {timeout} s; got {self.items}"
        return self.of(kind, slot)

    def of(self, kind: str, slot: str | None = None) -> list[tuple]:
        return [i for i in self.items if i[0] == kind and (slot is None or i[1] == slot)]
