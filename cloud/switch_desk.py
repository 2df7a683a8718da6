"""A company's switching desk: the part of company B's server that takes a customer's remote switch
(JP5159864B2 embodiment 3, steps 1-5).

1. The customer's terminal sends the wish to switch to this company (:class:`SwitchRequest`).
2. The desk answers with a confirmation message (:class:`Offer`): what will change, which data the
   company will then receive, and when. Nothing is sent to the meter yet.
3. The customer confirms the offer (its token, signed by the desk, valid for :data:`OFFER_TTL`).
4. The desk issues the signed contract change data (the same document a contract card carries,
   with a fresh serial) and sends it to the meter as a ``contract_change`` command on
   ``meters/{id}/commands``.
5. The meter verifies it exactly like a card and stores it as its pending change (56B/56C); before
   switching it asks this company's server for confirmation (embodiment 4).

The desk holds the company's signing key, so it runs with the company's server, under the company's
broker account (which may write ``meters/+/commands`` and nothing else of another party's).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from appliance import topics
from appliance.clock import Clock, iso, parse_iso
from appliance.datatypes import DataType, parse_data_types
from appliance.domain import Action, Company, Role, SwitchTime, WeeklySlot
from appliance.trust import keys, sign_command
from appliance.trust.certificate import parse_certificate
from appliance.trust.document import ContractDocument, issue_document

OFFER_TTL = timedelta(minutes=15)  # the customer confirms within this
DOCUMENT_TTL = timedelta(days=7)  # the document need only be valid when the meter receives it
EARLIEST_SWITCH = timedelta(minutes=1)  # a date-time switch must lie at least this far ahead
LATEST_SWITCH = timedelta(days=366)


class DeskRefusal(ValueError):
    """A request the desk will not offer or confirm. ``field`` names the form field at fault."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason  # a key of the page's words


@dataclass(frozen=True)
class DeskCompany:
    """What the company offers: its identity, the data it will receive, its tariff menus."""

    code: str
    name: str
    role: Role
    server: str
    data_types: tuple[DataType, ...]
    menus: tuple[str, ...] = ()


@dataclass(frozen=True)
class SwitchRequest:
    """Step 1: this meter's customer wants this company, from ``switch``, on ``menu``."""

    meter_id: str
    company: str
    switch: SwitchTime
    menu: str | None = None

    def to_json(self) -> dict:
        return {"meter_id": self.meter_id, "company": self.company, "switch": _switch_json(self.switch),
                "menu": self.menu}

    @classmethod
    def from_json(cls, d: dict) -> SwitchRequest:
        return cls(d["meter_id"], d["company"], _switch_from_json(d["switch"]), d.get("menu"))


@dataclass(frozen=True)
class Offer:
    """Step 2: the confirmation message, and the token the customer's OK sends back."""

    request: SwitchRequest
    company: DeskCompany
    expires_at: datetime
    token: str


class Publisher(Protocol):
    def __call__(self, topic: str, payload: bytes) -> None:
        """Publish at QoS 1 and return once the broker has acknowledged it; raise if it cannot."""


class SerialBook:
    """The company's document serials: strictly increasing, never reused, kept in a file (0600).

    The meter refuses a document whose serial is not above the last it accepted from the company
    (replay protection), so a serial must survive restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            last = int(self.path.read_text()) if self.path.exists() else 0
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(str(last + 1))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return last + 1


class SwitchDesk:
    def __init__(self, company: DeskCompany, *, key, certificate: bytes, serials: SerialBook, publish: Publisher,
                 clock: Clock, secret: bytes, offer_clock: Clock | None = None) -> None:
        """``clock``: the time the meter keeps (documents and switch times); ``offer_clock``: the customer's,
        for how long an offer stays open (default the same; the demo's meter runs on simulated time)."""
        cert = parse_certificate(certificate)
        if cert.company_code != company.code or cert.role is not company.role:
            raise ValueError(f"the certificate is for {cert.company_code} ({cert.role.value}), not {company.code}")
        self.company, self.key, self.certificate = company, key, certificate
        self.serials, self.publish, self.clock = serials, publish, clock
        self.offer_clock = offer_clock or clock
        self._secret = hashlib.sha256(b"switch-desk:" + company.code.encode() + secret).digest()

    # -- step 2 ----------------------------------------------------------------------------------
    def offer(self, request: SwitchRequest) -> Offer:
        if request.company != self.company.code:
            raise DeskRefusal("company", "desk_wrong_company")
        if request.menu is not None and request.menu not in self.company.menus:
            raise DeskRefusal("menu", "desk_unknown_menu")
        self._check_switch(request.switch)
        expires = self.offer_clock.now() + OFFER_TTL
        body = json.dumps({"r": request.to_json(), "e": iso(expires)}, sort_keys=True, ensure_ascii=False).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()
        token = base64.urlsafe_b64encode(body).decode() + "." + base64.urlsafe_b64encode(mac).decode()
        return Offer(request, self.company, expires, token)

    def read_offer(self, token: str) -> Offer:
        """The offer a token stands for, if this desk made it and it has not expired."""
        try:
            body_b64, mac_b64 = token.split(".", 1)
            body = base64.urlsafe_b64decode(body_b64)
            ok = hmac.compare_digest(hmac.new(self._secret, body, hashlib.sha256).digest(),
                                     base64.urlsafe_b64decode(mac_b64))
            data = json.loads(body) if ok else None
        except (ValueError, TypeError):
            data = None
        if data is None:
            raise DeskRefusal("offer", "desk_bad_offer")
        expires = parse_iso(data["e"])
        if self.offer_clock.now() > expires:
            raise DeskRefusal("offer", "desk_offer_expired")
        return Offer(SwitchRequest.from_json(data["r"]), self.company, expires, token)

    # -- step 4 ----------------------------------------------------------------------------------
    def accept(self, token: str) -> int:
        """The customer said OK: sign the contract change and send it to the meter. Returns its serial."""
        offer = self.read_offer(token)
        request = offer.request
        self._check_switch(request.switch)  # a date-time may have passed while the customer read the offer
        now = self.clock.now()
        serial = self.serials.next()
        document = ContractDocument(
            kind=self.company.role, action=Action.CONTRACT,
            company=Company(self.company.code, self.company.name, self.company.server),
            data_types=self.company.data_types, switch=request.switch, serial=serial,
            issued_at=now - timedelta(seconds=30), expires_at=now + DOCUMENT_TTL,  # 30 s: clock skew
            menu=request.menu, meter_id=request.meter_id)
        signed = issue_document(document, company_key=self.key, certificate=self.certificate)
        command = sign_command("contract_change", meter_id=request.meter_id, company_key=self.key,
                               certificate=self.certificate, now=now, document=signed)
        self.publish(topics.commands(request.meter_id), command)
        return serial

    def _check_switch(self, switch: SwitchTime) -> None:
        if switch.at is not None:
            ahead = switch.at - self.clock.now()
            if ahead < EARLIEST_SWITCH:
                raise DeskRefusal("switch", "desk_switch_past")
            if ahead > LATEST_SWITCH:
                raise DeskRefusal("switch", "desk_switch_far")
        if switch.weekly and len(switch.weekly) > 14:
            raise DeskRefusal("switch", "desk_weekly_many")


def _switch_json(s: SwitchTime) -> object:
    if s.immediate:
        return "immediate"
    if s.at is not None:
        return iso(s.at)
    return [[w.day, w.at] for w in s.weekly]


def _switch_from_json(v: object) -> SwitchTime:
    if v == "immediate":
        return SwitchTime(immediate=True)
    if isinstance(v, str):
        return SwitchTime(at=parse_iso(v))
    return SwitchTime(weekly=tuple(WeeklySlot(int(d), str(a)) for d, a in v))  # type: ignore[union-attr]


# -- a desk from its directory ---------------------------------------------------------------------
def load_desk(directory: Path, *, publish: Publisher, clock: Clock, secret: bytes) -> SwitchDesk:
    """``directory`` holds ``company.toml`` (code, name, role, server, data_types, menus), the company's
    signing key ``company.key`` (mode 0600) and its registry certificate ``company.cert``; the desk
    keeps its serials in ``serial`` there."""
    spec = tomllib.loads((directory / "company.toml").read_text())
    company = DeskCompany(spec["code"], spec["name"], Role(spec["role"]), spec.get("server", ""),
                          parse_data_types(",".join(spec["data_types"])), tuple(spec.get("menus", ())))
    return SwitchDesk(company, key=keys.load_private(directory / "company.key"),
                      certificate=(directory / "company.cert").read_bytes(), serials=SerialBook(directory / "serial"),
                      publish=publish, clock=clock, secret=secret)


def write_desk(directory: Path, company: DeskCompany, key, certificate: bytes) -> None:
    """The inverse of :func:`load_desk` (the demo writes its companies' desks this way)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    menus = ", ".join(json.dumps(m, ensure_ascii=False) for m in company.menus)
    types = ", ".join(json.dumps(t.value) for t in company.data_types)
    (directory / "company.toml").write_text(
        f'code = {json.dumps(company.code)}\nname = {json.dumps(company.name, ensure_ascii=False)}\n'
        f'role = "{company.role.value}"\nserver = {json.dumps(company.server)}\n'
        f'data_types = [{types}]\nmenus = [{menus}]\n')
    keys.save_private(key, directory / "company.key")
    (directory / "company.cert").write_bytes(certificate)


class MqttPublisher:
    """Publishes on the company's broker account, at QoS 1, waiting for the broker's acknowledgement."""

    def __init__(self, settings, client_id: str, timeout_s: float = 5.0) -> None:
        from .mqtt import make_client

        self.timeout_s = timeout_s
        self.client = make_client(settings, client_id=client_id)
        self.client.connect_async(settings.host, settings.port)
        self.client.loop_start()

    def __call__(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(self.timeout_s)
        if not info.is_published():
            raise ConnectionError("the broker did not acknowledge the command")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

