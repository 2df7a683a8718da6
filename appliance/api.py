"""The meter core's API: one facade that the CLI, the card readers, remote commands and the touch
screen all use. It holds the business rules' entry points; its callers hold none.

Every method does I/O (SQLite), so a UI calls it off its UI thread. What it returns for display is
typed and frozen (the views below); ``to_json`` gives the CLI's machine-readable form.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .clock import JST, Clock, iso
from .datatypes import DataType
from .domain import Action, Company, Contract, ContractChange, Role, SwitchTime
from .intake import accept_change, cancel_change
from .interfaces import BreakerState
from .schedule import describe
from .sending import Sender
from .store import Store, StoredCard
from .trust import DocumentRejected, MalformedDocument, read_document
from .uplink import LinkProblem, LinkState


@dataclass(frozen=True)
class ContractView:
    """A contract in force: who receives which data types, how often, on which tariff menu, since when."""

    role: Role
    company: Company
    data_types: tuple[DataType, ...]
    menu: str | None
    send_interval: timedelta
    since: datetime | None
    measure_interval: timedelta | None = None  # None: the meter's own measurement interval

    @classmethod
    def of(cls, c: Contract) -> ContractView:
        return cls(c.role, c.company, c.data_types, c.menu, c.send_interval, c.since, c.measure_interval)

    def to_json(self) -> dict[str, Any]:
        return {"role": self.role.value, "company": self.company.code, "name": self.company.name,
                "server": self.company.server, "data_types": [t.value for t in self.data_types], "menu": self.menu,
                "send_interval_s": self.send_interval.total_seconds(), "since": iso(self.since) if self.since else None,
                "measure_interval_s": self.measure_interval.total_seconds() if self.measure_interval else None}


@dataclass(frozen=True)
class PendingChangeView:
    """A stored change still to take effect (56B/56C). ``last_applied``: a weekly rule's last switch."""

    id: int
    kind: Role
    action: Action
    company: Company
    switch: SwitchTime
    data_types: tuple[DataType, ...]
    menu: str | None
    source: str
    last_applied: datetime | None
    measure_interval: timedelta | None = None

    @property
    def switch_text(self) -> str:
        """``immediate``, ``2026-12-01 00:00 JST`` or ``weekly fri 18:00, mon 07:00``."""
        return describe(self.switch)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind.value, "action": self.action.value, "company": self.company.code,
                "name": self.company.name, "switch": self.switch_text, "data_types": [t.value for t in self.data_types],
                "menu": self.menu, "source": self.source,
                "last_applied": iso(self.last_applied) if self.last_applied else None,
                "measure_interval_s": self.measure_interval.total_seconds() if self.measure_interval else None}


@dataclass(frozen=True)
class ContractOverview:
    in_force: tuple[ContractView, ...]
    pending: tuple[PendingChangeView, ...]

    def to_json(self) -> dict[str, Any]:
        return {"in_force": [c.to_json() for c in self.in_force], "pending": [p.to_json() for p in self.pending]}


def contract_overview(store: Store) -> ContractOverview:
    """Who is in force, what is pending, and who receives which data: for the CLI and the UI."""
    pending = tuple(
        PendingChangeView(ch.id, ch.kind, ch.action, ch.company, ch.switch, ch.data_types, ch.menu, ch.source,
                          book["last_applied"], ch.measure_interval)
        for ch, book in store.changes(("pending",)))
    return ContractOverview(tuple(ContractView.of(c) for c in store.contracts()), pending)


@dataclass(frozen=True)
class AlertView:
    """An alert not yet dismissed. ``breaker_open`` is the breaker's state the alert recorded (None: it
    recorded none)."""

    id: int
    at: datetime
    kind: str
    company_code: str | None
    message: str
    message_ja: str
    breaker_open: bool | None
    code: str | None = None  # the refusal's or failure's code: a display words the alert from it
    purpose: str | None = None  # send | switch | breaker, where the alert says
    action: str | None = None  # open | close, for the grid operator's supply order

    @classmethod
    def of(cls, row: dict[str, Any]) -> AlertView:
        d = row["detail"]
        return cls(row["id"], row["at"], row["kind"], row["company_code"], row["message"], row["message_ja"],
                   _recorded_breaker_open(d.get("breaker")), _text(d.get("code")), _text(d.get("purpose")),
                   _text(d.get("action")))


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _recorded_breaker_open(recorded: Any) -> bool | None:
    """An alert records the breaker as its stored state (a dict) or as the word ``open``/``closed``."""
    if recorded is None:
        return None
    if isinstance(recorded, dict):
        state = BreakerState.from_json(recorded)
        return None if state is None else not state.closed
    return str(recorded).lower() == "open"


@dataclass(frozen=True)
class MeterView:
    """Everything a display needs at one moment. ``last_reading`` is the reading as stored and
    published (``Reading.as_json()``, the fields of docs/protocol.md)."""

    meter_id: str
    now: datetime
    last_reading: dict[str, Any] | None
    in_force: tuple[ContractView, ...]
    pending: tuple[PendingChangeView, ...]
    alerts: tuple[AlertView, ...]
    link: LinkState | None
    queued: int
    breaker: BreakerState | None
    oldest_due: datetime | None = None  # when the oldest queued message that is due became due


class MeterAPI:
    def __init__(self, store: Store, meter_id: str, measurement_interval: timedelta, clock: Clock) -> None:
        self.store = store
        self.meter_id = meter_id
        self.interval = measurement_interval
        self.clock = clock
        self.sender = Sender(store, meter_id)

    # -- S801/S802: every change enters here --------------------------------------------------
    def submit_change(self, change: ContractChange) -> int:
        """Validate and store a contract change; raises ChangeRejected with the reason."""
        return accept_change(self.store, self.sender, change, self.clock.now(), self.interval)

    def cancel_change(self, change_id: int) -> bool:
        return cancel_change(self.store, change_id)

    # -- views ---------------------------------------------------------------------------------
    def view(self) -> MeterView:
        overview = contract_overview(self.store)
        link = self.store.get_meta("link")
        now = self.clock.now()
        return MeterView(
            meter_id=self.meter_id,
            now=now,
            last_reading=self.store.last_reading(),
            in_force=overview.in_force,
            pending=overview.pending,
            alerts=tuple(AlertView.of(a) for a in self.store.alerts()),
            link=None if link is None else LinkState(bool(link.get("connected")), link.get("detail", ""),
                                                     _problem(link.get("problem"))),
            queued=self.store.outbox_size(),
            breaker=self.store.breaker_state(),
            oldest_due=self.store.oldest_due(now),
        )

    def day_readings(self, day: date) -> list[dict[str, Any]]:
        """The readings whose windows end within one JST day (for the usage chart)."""
        start = datetime(day.year, day.month, day.day, tzinfo=JST)
        return self.store.readings(since=start, until=start + timedelta(days=1))

    def stored_days(self) -> list[date]:
        """The JST days the store still holds readings for, oldest first."""
        rows = self.store.db.execute("SELECT min(interval_end), max(interval_end) FROM readings").fetchone()
        if rows[0] is None:
            return []
        first = datetime.fromtimestamp(rows[0], JST).date()
        last = datetime.fromtimestamp(rows[1], JST).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def clear_alert(self, alert_id: int) -> None:
        self.store.clear_alert(alert_id, self.clock.now())

    # -- contract data read from cards (Fig. 9(b): the meter stores what its cards said) --------------
    def remember_card(self, raw: bytes, slot: str) -> None:
        """Keep a card's signed document, replacing an earlier one of the same company and menu.

        The caller verified it; this only reads it, so bytes that are not a contract document are
        refused (MalformedDocument, a ChangeRejected) and nothing is stored."""
        try:
            doc = read_document(raw)
        except DocumentRejected as exc:
            raise MalformedDocument(f"slot {slot}: not contract card data, not stored: {exc.reason}") from None
        self.store.remember_card(StoredCard(doc.company.code, doc.menu, doc.kind.value, doc.serial,
                                            self.clock.now(), slot, bytes(raw)))

    def stored_cards(self) -> list[StoredCard]:
        """Every stored card document, oldest first; verify each again before use (it may have expired)."""
        return self.store.stored_cards()

    def forget_card(self, code: str, menu: str | None) -> bool:
        return self.store.forget_card(code, menu)


def _problem(value) -> LinkProblem:
    """A stored link problem; one written by another version reads as no known kind."""
    try:
        return LinkProblem(value or "")
    except ValueError:
        return LinkProblem.NONE
