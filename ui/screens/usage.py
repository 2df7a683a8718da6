"""Usage: one JST day's consumption in half-hour bars on a kWh axis shared by every stored day, the
day's total against the day before, a yen estimate from the supply contract's tariff menu
(:mod:`ui.tariff`), the value of a touched bar, and the earlier days the meter still holds."""
from __future__ import annotations

from datetime import date, timedelta

from kivy.uix.boxlayout import BoxLayout

from ..model import DayUsage, axis_ticks, axis_top, half_hour_usage, slot_times
from ..tariff import menu_of
from ..widgets import DIM, MIN_TOUCH, TEXT, BarChart, Flat, Text, put
from .base import UiContext


class UsageScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.day: date | None = None  # the day shown
        self.days: list[date] = []  # the days the store holds, oldest first
        self.usage: DayUsage | None = None  # the day shown
        self.before: DayUsage | None = None  # the day before it, if stored
        self.peaks: dict[date, float] = {}  # each stored day's highest half hour: the shared axis
        self.root = box = BoxLayout(orientation="vertical", padding=s(8), spacing=s(4))
        head = BoxLayout(size_hint_y=None, height=s(MIN_TOUCH + 4), spacing=s(6))
        self.prev = Flat(font_size=s(17), size_hint_x=0.22)
        self.prev.bind(on_release=lambda *_: self.step(-1))
        self.next = Flat(font_size=s(17), size_hint_x=0.22)
        self.next.bind(on_release=lambda *_: self.step(1))
        self.title = Text(font_size=s(18), halign="center")
        for w in (self.prev, self.title, self.next):
            head.add_widget(w)
        box.add_widget(head)
        self.axis = Text(font_size=s(16), color=DIM, size_hint_y=None, height=s(20))
        box.add_widget(self.axis)
        self.chart = BarChart(font_size=s(14))
        self.chart.bind(selected=lambda *_: self.refresh())
        box.add_widget(self.chart)
        self.total = Text(font_size=s(17), size_hint_y=None, height=s(24), color=TEXT)
        box.add_widget(self.total)
        self.yen = Text(font_size=s(16), size_hint_y=None, height=s(24), color=TEXT)
        box.add_widget(self.yen)
        self.detail = Text(font_size=s(16), size_hint_y=None, height=s(24), color=DIM)
        box.add_widget(self.detail)

    def load(self, day: date | None) -> None:
        """Fetch ``day`` (the newest stored day if None or no longer stored) and the day before on the
        worker, and the peaks of the stored days not seen yet (today's again: it is still growing)."""
        api = self.ctx.api
        known = set(self.peaks)

        def fetch():
            days = api.stored_days()
            d = day if day in days else (days[-1] if days else None)
            usage = {x: half_hour_usage(x, api.day_readings(x))
                     for x in days if x == d or x == (d and d - timedelta(days=1)) or x not in known or x == days[-1]}
            return days, d, usage
        self.ctx.worker.submit(fetch, then=self._loaded)

    def _loaded(self, result) -> None:
        self.days, self.day, usage = result
        for d, u in usage.items():
            self.peaks[d] = max((v for v in u.slots if v is not None), default=0.0)
        self.usage = usage.get(self.day)
        self.before = usage.get(self.day - timedelta(days=1)) if self.day else None
        self.chart.selected = -1
        self.refresh()

    def step(self, step: int) -> None:
        if self.day is None or not self.days:
            return
        i = max(0, min(len(self.days) - 1, self.days.index(self.day) + step))
        self.load(self.days[i])

    def retext(self) -> None:
        t = self.ctx.tx.t
        self.prev.text = t("prev_day")
        self.next.text = t("next_day")

    def menu(self) -> str | None:
        """The supply contract's tariff menu, from the view."""
        v = self.ctx.view
        return next((c.menu for c in (v.in_force if v else ()) if c.role.value == "supply"), None)

    def refresh(self) -> None:
        t = self.ctx.tx.t
        day, usage = self.day, self.usage
        top = axis_top(self.peaks.get(d, 0.0) for d in self.days)
        put(self.chart, values=usage.slots if usage else [], bad=usage.bad if usage else [], top_kwh=top,
            y_ticks=axis_ticks(top))
        put(self.axis, text=t("usage_axis"))
        put(self.title, text=t("usage_title", day=day.strftime("%Y/%m/%d") if day else "-"))
        menu_name = self.menu()
        tariff = menu_of(menu_name)
        if usage and usage.readings:
            parts = [t("usage_total", kwh=usage.total_kwh)]
            if self.before and self.before.readings:
                parts.append(self.vs_before(usage, self.before))
            else:
                parts.append(t("usage_prev_none"))
            total = "   ".join(parts)
            if tariff is not None:
                yen = t("usage_yen", yen=tariff.day_yen(usage.total_kwh), menu=tariff.name)
            else:
                yen = t("usage_yen_unknown", menu=menu_name) if menu_name else t("usage_yen_no_menu")
        else:
            total, yen = t("usage_none"), ""
        put(self.total, text=total)
        put(self.yen, text=yen)
        put(self.detail, text=self.bar_text(tariff))
        i = self.days.index(day) if day in self.days else -1
        put(self.prev, disabled=i <= 0)
        put(self.next, disabled=i < 0 or i >= len(self.days) - 1)

    def vs_before(self, usage: DayUsage, before: DayUsage) -> str:
        """Against the day before; today (the newest stored day, still running) by the same time."""
        t = self.ctx.tx.t
        if self.days and self.day == self.days[-1] and usage.last_slot is not None:
            return t("usage_vs_prev_so_far", diff=usage.total_kwh - before.total_until(usage.last_slot))
        diff = usage.total_kwh - before.total_kwh
        if before.total_kwh > 0:
            return t("usage_vs_prev_pct", diff=diff, pct=100 * diff / before.total_kwh)
        return t("usage_vs_prev", diff=diff)

    def bar_text(self, tariff) -> str:
        """The touched bar's half hour and its value (in yen at the day's average unit price)."""
        t, i, usage = self.ctx.tx.t, self.chart.selected, self.usage
        if usage is None or not 0 <= i < len(usage.slots):
            return t("usage_hint")
        start, end = slot_times(i)
        kwh = usage.slots[i]
        if kwh is None:
            return t("usage_bar_none", start=start, end=end)
        if tariff is not None and usage.total_kwh > 0:
            return t("usage_bar_yen", start=start, end=end, kwh=kwh,
                     yen=kwh * tariff.day_yen(usage.total_kwh) / usage.total_kwh)
        return t("usage_bar", start=start, end=end, kwh=kwh)
