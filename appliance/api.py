"""The meter core's API: one facade that the CLI, the card readers, remote commands and the touch
screen all use. It holds the business rules' entry points; its callers hold none.

Every method does I/O (SQLite), so a UI calls it off its UI thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .clock import JST, Clock, iso
from .domain import ContractChange
from .intake import accept_change, cancel_change
from .schedule import describe
from .sending import Sender
from .store import Store, StoredCard
from .trust import DocumentRejected, MalformedDocument, read_document


def contract_overview(store: Store) -> dict:
    """Who is in force, what is pending, and who receives which data: for the CLI and the UI."""
    in_force = [
        {"role": c.role.value, "company": c.company.code, "name": c.company.name, "server": c.company.server,
         "data_types": [t.value for t in c.data_types], "menu": c.menu,
         "send_interval_s": c.send_interval.total_seconds(), "since": iso(c.since) if c.since else None}
        for c in store.contracts()
    ]
    pending = [
        {"id": ch.id, "kind": ch.kind.value, "action": ch.action.value, "company": ch.company.code,
         "name": ch.company.name, "switch": describe(ch.switch), "data_types": [t.value for t in ch.data_types],
         "menu": ch.menu, "source": ch.source,
         "last_applied": iso(book["last_applied"]) if book["last_applied"] else None}
        for ch, book in store.changes(("pending",))
    ]
    return {"in_force": in_force, "pending": pending}



@dataclass(frozen=True)
class MeterView:
    """Everything a display needs at one moment."""

    meter_id: str
    now: datetime
    last_reading: dict[str, Any] | None
    in_force: list[dict[str, Any]]
    pending: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    link: dict[str, Any] | None
    queued: int
    breaker: dict[str, Any] | None


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
        return MeterView(
            meter_id=self.meter_id,
            now=self.clock.now(),
            last_reading=self.store.last_reading(),
            in_force=overview["in_force"],
            pending=overview["pending"],
            alerts=self.store.alerts(),
            link=self.store.get_meta("link"),
            queued=self.store.outbox_size(),
            breaker=self.store.get_meta("breaker"),
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
