"""A yen estimate of a day's usage from the supply contract's tariff menu, as a HEMS monitor shows.

Only the energy charge (電力量料金) of a menu whose unit prices are declared here: no basic charge,
no fuel-cost adjustment (燃料費調整額), no renewable-energy levy (再エネ賦課金), so the bill is higher.
A menu with no declared prices gets no estimate (the screen says so), never a guessed one.

Prices (yen per kWh, tax included) and their source:

* 従量電灯B: 東京電力エナジーパートナー, unit prices from 2023-06-01 (its published 料金単価表):
  up to 120 kWh a month 30.00, 120-300 kWh 36.60, above 300 kWh 40.69.

A tiered menu charges by the month's total. A day is estimated as one thirtieth of a month that used
the same every day (30 x the day's kWh through the tiers, divided by 30); a half hour at the
average unit price of that day.
"""
from __future__ import annotations

from dataclasses import dataclass

DAYS_PER_MONTH = 30


@dataclass(frozen=True)
class Tier:
    up_to_kwh: float | None  # a month's kWh this price applies up to; None: no upper limit
    yen_per_kwh: float


@dataclass(frozen=True)
class Menu:
    name: str
    tiers: tuple[Tier, ...]
    source: str

    def month_yen(self, kwh: float) -> float:
        yen, below = 0.0, 0.0
        for t in self.tiers:
            upper = kwh if t.up_to_kwh is None else min(kwh, t.up_to_kwh)
            if upper > below:
                yen += (upper - below) * t.yen_per_kwh
            if t.up_to_kwh is None or kwh <= t.up_to_kwh:
                break
            below = t.up_to_kwh
        return yen

    def day_yen(self, kwh: float) -> float:
        """The energy charge of a day's kWh, in a month that used the same every day."""
        return self.month_yen(kwh * DAYS_PER_MONTH) / DAYS_PER_MONTH


MENUS: dict[str, Menu] = {m.name: m for m in (
    Menu("従量電灯B", (Tier(120, 30.00), Tier(300, 36.60), Tier(None, 40.69)),
         "東京電力エナジーパートナー 料金単価 (2023-06-01)"),
)}


def menu_of(name: str | None) -> Menu | None:
    return MENUS.get(name or "")
