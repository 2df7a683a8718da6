"""What every screen shares with the app shell: the meter's API and clock, the card slots, the
texts, the scale, the worker, the latest view, and the notice line."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from appliance.domain import ContractChange

from ..i18n import Texts
from ..model import CardSlots, SlotState, Worker
from ..notices import Notice, refusal, refusal_key, switching

if TYPE_CHECKING:
    from appliance.api import MeterAPI, MeterView

    from ..app import UiSettings


@dataclass
class UiContext:
    api: MeterAPI
    cards: CardSlots
    settings: UiSettings
    tx: Texts
    scale: float  # screen pixels per pixel of the 800x480 design
    worker: Worker
    notify: Callable[[Notice], None]  # the notice line under the top bar
    request_view: Callable[[], None]  # fetch a fresh view now (after a change)
    view: MeterView | None = None  # the latest, None until the first arrives

    def s(self, px: float) -> float:
        return px * self.scale

    def now(self) -> datetime:
        """The meter's time (in the emulation a scaled clock), never the wall clock."""
        return self.api.clock.now()

    def rejected(self, exc: Exception) -> None:
        """A refusal from the core, worded for the household by its code (never its English text)."""
        self.notify(refusal(exc))

    def switch_to(self, change: ContractChange) -> None:
        """Submit a change the household chose (card select, OK on the list); the core may refuse it.
        The notice turns to the past tense when the view shows the contract in force."""
        self.notify(switching(change.company.name or change.company.code, change.kind.value, change.company.code,
                              change.menu))
        self.worker.submit(self.api.submit_change, change, then=lambda _id: self.request_view(), fail=self.rejected)


def slot_text(tx: Texts, st: SlotState | None) -> str:
    """What a card slot shows (markup): empty, reading, the card's refusal, or its company and kind."""
    if st is None or not st.present:
        return tx.t("slot_empty")
    if st.reading:
        return tx.t("slot_reading")
    if st.problem:
        return "[color=ff6b5e]" + tx.t(refusal_key(st.problem.get("code"))) + "[/color]"
    e = st.company
    return f"[b]{e['name']}[/b]\n{company_kind(tx, e)}" + (f" / {e['menu']}" if e.get("menu") else "")


def company_kind(tx: Texts, entry: dict) -> str:
    return tx.t("power_company" if entry["kind"] == "supply" else "data_company")
