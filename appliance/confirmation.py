"""Confirmation against spoofing (JP5159864B2 embodiment 4), hardware-free.

Before a contract switch takes effect (S804) and before sending data to a company (S806), the
meter asks that company for its confirmation data: a ``confirm_request`` event with a fresh nonce
on ``companies/{code}/meters/{id}/events``. The company's server answers with a signed ``confirm``
command on ``meters/{id}/commands`` (:func:`appliance.trust.verify_command`). The meter compares the
answer's company code and data types with what it stores:

* for a **switch**, the pending change (56B/56C) about to take effect;
* for **sending**, the contract in force (56A2/56A3), or the last one if it has just ended.

Outcomes:

* **match**: the switch applies / the company's data is released. A send confirmation holds for
  ``period`` (default one day; ``0`` asks before every send).
* **mismatch or a bad answer** (bad signature, uncertified key, expired, another meter's): neither
  switch nor send. The data stays in the outbox (held, never lost), a ``security_error`` event goes
  to the company, the household gets a ``security_error`` alert (which company, what failed, the
  breaker state), and if the company is the power company the breaker opens. The meter asks again
  after ``recheck_after``; a later match releases the data and closes a breaker it opened.
* **no answer** within ``timeout``: the data stays held and the meter asks again with a new nonce,
  backing off (timeout, 2x, 4x, ... up to ``retry_max``). It never guesses.

Only ``contract`` changes are confirmed before they switch (an abolition or a menu change carries
no new company data to confirm). Events to companies (including the requests themselves) are never
held; only data rows are. **New-building mode**: the breaker stays open until the first matching
confirmation from a power company, then closes, once.

Confirmation is off unless enabled (it needs the trust anchor to check answers); off, every gate
is open and the meter behaves as without this module. All timeouts use the injected clock.
"""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .breaker import BreakerControl
from .clock import Clock, iso
from .documents import claimed_company
from .domain import Action, Role
from .sending import Sender
from .store import OutboxRow, Store
from .switching import DueChange
from .trust import verify_command
from .trust.commands import CONFIRM
from .trust.rejections import DocumentRejected, NonceMismatch

log = logging.getLogger(__name__)

META = "confirmation"


@dataclass(frozen=True)
class ConfirmationSettings:
    enabled: bool = False
    period: timedelta = timedelta(days=1)
    timeout: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(minutes=10)
    recheck_after: timedelta = timedelta(hours=1)
    new_building: bool = False


@dataclass(frozen=True)
class OpenRequest:
    nonce: str
    purpose: str  # "switch" | "send"
    expected: tuple[str, ...]  # sorted data type names
    role: Role
    requested_at: datetime
    change_id: int | None = None
    occurrence: str | None = None


class Confirmer:
    def __init__(self, settings: ConfirmationSettings, store: Store, sender: Sender, meter_id: str,
                 root_public_key: Ed25519PublicKey | bytes | None, breaker: BreakerControl, clock: Clock) -> None:
        if settings.enabled and root_public_key is None:
            raise ValueError("confirmation needs the registry's public key to check the companies' answers")
        self.settings = settings
        self.enabled = settings.enabled
        self.store, self.sender, self.meter_id = store, sender, meter_id
        self.root = root_public_key
        self.breaker = breaker
        self.clock = clock
        self.open: dict[str, OpenRequest] = {}
        self._demand: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._next_try: dict[str, datetime] = {}
        self._sent: set[str] = set()  # companies sent to under a confirmation (period 0 consumes it)
        self._expect_cache: dict[str, list[str]] = {}  # per pump pass: what each company's answer must say
        saved = store.get_meta(META) if self.enabled else None
        self.state: dict[str, Any] = saved if isinstance(saved, dict) else {"companies": {}, "energized": False,
                                                                             "breaker_opened_by": None}
        if self.enabled and settings.new_building and not self.state.get("energized"):
            if self.breaker.closed and not self.breaker.state().override:
                self.breaker.set(False, "new building: waiting for the first matching confirmation from a power company")

    # -- gates -------------------------------------------------------------------------------
    def allows_switch(self, due: DueChange, now: datetime) -> bool:
        """S804 gate: True if the due change may apply now; otherwise a request is (or already was) sent."""
        ch = due.change
        if not self.enabled or ch.action is not Action.CONTRACT:
            return True
        c = self._company(ch.company.code)
        ok = c.get("switch_ok")
        if ok and ok.get("change_id") == ch.id and ok.get("occurrence") == iso(due.occurrence):
            c.pop("switch_ok")
            self._save()
            return True
        self._request(ch.company.code, "switch", _names(ch.data_types), ch.kind, now, change_id=ch.id,
                      occurrence=iso(due.occurrence))
        return False

    def allows_row(self, row: OutboxRow, now: datetime) -> bool:
        """S806 gate for the outbox pump: a company's data rows wait for its confirmation; events never wait."""
        if not self.enabled or row.company_code is None or not row.topic.endswith("/data"):
            return True
        code = row.company_code
        if self._send_ok(code, now):
            self._sent.add(code)
            return True
        self._demand.add(code)
        return False

    def would_hold(self, row: OutboxRow, now: datetime) -> bool:
        """Whether the pump would hold this row now (no side effects: for tests and the status display)."""
        if not self.enabled or row.company_code is None or not row.topic.endswith("/data"):
            return False
        return not self._send_ok(row.company_code, now)

    def _send_ok(self, code: str, now: datetime) -> bool:
        c = self._company(code)
        at = c.get("send_ok_at")
        if at is None:
            return False
        if code not in self._expect_cache:
            self._expect_cache[code] = list(self._expected_send(code)[0])
        if c.get("send_types") != self._expect_cache[code]:
            return False  # the contract changed since: confirm the new terms
        # period 0: the confirmation covers this pump pass only (after_pump consumes it)
        return self.settings.period <= timedelta(0) or now - datetime.fromisoformat(at) < self.settings.period

    def after_pump(self) -> None:
        """With ``period`` 0 a confirmation covers one send: the next send asks again."""
        if self.enabled and self.settings.period <= timedelta(0) and self._sent:
            for code in self._sent:
                self._company(code).pop("send_ok_at", None)
            self._save()
        self._sent.clear()
        self._expect_cache.clear()

    def held(self) -> dict[str, Any]:
        """Companies whose data is held now, and why (for the display and the CLI)."""
        return {code: c.get("failure") or {"waiting": True} for code, c in self.state["companies"].items()
                if code in self.open or c.get("blocked_until")}

    # -- the loop ----------------------------------------------------------------------------
    def tick(self, now: datetime) -> None:
        """Time out unanswered requests (backoff), and ask the companies whose data waits."""
        if not self.enabled:
            return
        for c in self.store.contracts():
            entry = self._company(c.company.code)
            names, role = list(_names(c.data_types)), c.role.value
            if entry.get("last_types") != names or entry.get("role") != role:
                entry["last_types"], entry["role"] = names, role
                self._save()
        for code, req in list(self.open.items()):
            if now - req.requested_at >= self.settings.timeout or now < req.requested_at:
                del self.open[code]
                n = self._attempts[code] = self._attempts.get(code, 0) + 1
                delay = min(self.settings.timeout * (2 ** (n - 1)), self.settings.retry_max)
                self._next_try[code] = now + delay
                log.warning("no confirmation from %s within %s (%s, attempt %d): its data stays held; asking again "
                            "at %s", code, self.settings.timeout, req.purpose, n, iso(now + delay))
                self._company(code)["unanswered"] = {"since": iso(req.requested_at), "attempts": n}
                self._save()
        if self.settings.new_building and not self.state.get("energized"):
            supply = self.store.supply_contract()
            if supply is not None:
                self._demand.add(supply.company.code)
        self._expect_cache.clear()
        for code in sorted(self._demand):
            waiting_for_power = self.settings.new_building and not self.state.get("energized")
            if self._send_ok(code, now) and not waiting_for_power:
                continue  # answered since the rows were held: the next pump pass sends them
            types, role = self._expected_send(code)
            self._request(code, "send", types, role, now)
        self._demand.clear()

    # -- answers -----------------------------------------------------------------------------
    def pending_nonce(self, code: str) -> str | None:
        req = self.open.get(code)
        return req.nonce if req else None

    def on_confirm(self, payload: bytes, now: datetime) -> None:
        """A ``confirm`` command from ``meters/{id}/commands`` (run on the service thread)."""
        if not self.enabled:
            log.info("ignored a confirm command: confirmation is not enabled on this meter")
            return
        try:
            cmd = verify_command(payload, root_public_key=self.root, meter_id=self.meter_id, now=now,
                                 pending_nonce=self.pending_nonce)
        except NonceMismatch as exc:
            log.warning("ignored a confirmation: %s", exc.reason)  # late (we asked again) or replayed
            return
        except DocumentRejected as exc:
            claimed = claimed_company(payload)
            if claimed in self.open:
                self._fail(claimed, self.open.pop(claimed), f"the answer failed its checks: {exc.reason}", exc.code, now)
            else:
                log.warning("ignored a bad confirm command (claims %s, nothing asked): %s", claimed, exc.reason)
            return
        if cmd.type != CONFIRM or cmd.confirm is None:
            return
        code = cmd.confirm.company_code
        req = self.open.pop(code, None)
        if req is None:
            return
        got = tuple(sorted(t.value for t in cmd.confirm.data_types))
        if got == req.expected:
            self._ok(code, req, now)
        else:
            self._fail(code, req, f"data types differ: the meter stores {', '.join(req.expected) or 'none'}, "
                                  f"{code} answered {', '.join(got) or 'none'}", "data_types_mismatch", now)

    def _ok(self, code: str, req: OpenRequest, now: datetime) -> None:
        self._attempts.pop(code, None)
        self._next_try.pop(code, None)
        c = self._company(code)
        for key in ("failure", "blocked_until", "unanswered"):
            c.pop(key, None)
        if req.purpose == "switch":
            c["switch_ok"] = {"change_id": req.change_id, "occurrence": req.occurrence}
        else:
            c["send_ok_at"], c["send_types"] = iso(now), list(req.expected)
        log.info("confirmation from %s matches (%s: %s)", code, req.purpose, ", ".join(req.expected))
        if req.role is Role.SUPPLY:
            if self.settings.new_building and not self.state.get("energized"):
                self.state["energized"] = True
                self.breaker.set(True, f"new building: first matching confirmation from power company {code}")
            elif self.state.get("breaker_opened_by") == code:
                # the company whose failed confirmation opened the breaker now matches: power returns
                # (an installer's override still wins: the breaker refuses and logs it)
                self.breaker.set(True, f"confirmation from power company {code} matches again")
                self.state["breaker_opened_by"] = None
        self._save()

    def _fail(self, code: str, req: OpenRequest, what: str, failure: str, now: datetime) -> None:
        self._attempts.pop(code, None)
        self._next_try.pop(code, None)
        c = self._company(code)
        for key in ("send_ok_at", "switch_ok", "unanswered"):
            c.pop(key, None)
        c["blocked_until"] = iso(now + self.settings.recheck_after)
        c["failure"] = {"at": iso(now), "what": what, "code": failure, "purpose": req.purpose}
        supply = req.role is Role.SUPPLY
        if supply:
            self.breaker.set(False, f"security error: the confirmation from power company {code} failed ({what})")
            self.state["breaker_opened_by"] = code
        breaker = self.breaker.state()
        held = "its data is held" + ("; the contract switch is deferred" if req.purpose == "switch" else "")
        msg = (f"security error: {code} ({'power' if supply else 'data'} company) failed confirmation: {what}; "
               f"{held}; breaker {'OPEN' if not breaker.closed else 'closed'}")
        msg_ja = (f"セキュリティエラー: {code}の契約確認データが一致しません。{code}へのデータ送信を保留しています。"
                  + ("電力会社の確認に失敗したため遮断器を開きました(電気が止まっています)。" if supply and not breaker.closed
                     else "遮断器は閉じています(電気は使えます)。" if breaker.closed else "遮断器は開いています。"))
        log.error("%s", msg)
        with self.store.transaction():
            self.sender.queue_event(code, "security_error", now, code=failure, reason=what, purpose=req.purpose,
                                    change_id=req.change_id, breaker="closed" if breaker.closed else "open")
            alert_id = self.store.raise_alert(now, "security_error", msg, msg_ja, code, what=what, code=failure,
                                              purpose=req.purpose, change_id=req.change_id,
                                              breaker={"closed": breaker.closed, "reason": breaker.reason})
            self.sender.queue_alert(alert_id, "security_error", now, code, role="supply" if supply else "data",
                                    purpose=req.purpose, breaker="closed" if breaker.closed else "open")
            self._save()

    # -- helpers -----------------------------------------------------------------------------
    def _request(self, code: str, purpose: str, expected: tuple[str, ...], role: Role, now: datetime, *,
                 change_id: int | None = None, occurrence: str | None = None) -> None:
        if code in self.open:
            return
        c = self._company(code)
        blocked = c.get("blocked_until")
        if blocked and now < datetime.fromisoformat(blocked):
            return
        retry = self._next_try.get(code)
        if retry and now < retry:
            return
        nonce = secrets.token_hex(16)
        self.open[code] = OpenRequest(nonce, purpose, expected, role, now, change_id, occurrence)
        details: dict[str, Any] = {"nonce": nonce, "purpose": purpose}
        if purpose == "switch":
            details.update(change_id=change_id, scheduled_at=occurrence)
        self.sender.queue_event(code, "confirm_request", now, **details)
        log.info("asked %s for confirmation (%s%s)", code, purpose, f" of change #{change_id}" if change_id else "")

    def _expected_send(self, code: str) -> tuple[tuple[str, ...], Role]:
        for c in self.store.contracts():
            if c.company.code == code:
                return _names(c.data_types), c.role
        entry = self._company(code)
        return tuple(entry.get("last_types") or ()), Role(entry.get("role") or "data")

    def _company(self, code: str) -> dict[str, Any]:
        return self.state["companies"].setdefault(code, {})

    def _save(self) -> None:
        self.store.set_meta(META, self.state)


def _names(types) -> tuple[str, ...]:
    return tuple(sorted(t.value for t in types))
