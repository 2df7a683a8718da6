"""Usage: one JST day's consumption in half-hour bars, and the earlier days the meter still holds."""
from __future__ import annotations

from datetime import date

from kivy.uix.boxlayout import BoxLayout

from ..model import half_hour_usage
from ..widgets import DIM, BarChart, Flat, Text, put
from .base import UiContext


class UsageScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.day: date | None = None  # the day shown
        self.days: list[date] = []  # the days the store holds, oldest first
        self.rows: list[dict] = []  # the day's readings
        self.root = box = BoxLayout(orientation="vertical", padding=s(8), spacing=s(6))
        head = BoxLayout(size_hint_y=None, height=s(44), spacing=s(6))
        self.prev = Flat(font_size=s(16), size_hint_x=0.22)
        self.prev.bind(on_release=lambda *_: self.step(-1))
        self.next = Flat(font_size=s(16), size_hint_x=0.22)
        self.next.bind(on_release=lambda *_: self.step(1))
        self.title = Text(font_size=s(17), halign="center")
        for w in (self.prev, self.title, self.next):
            head.add_widget(w)
        box.add_widget(head)
        self.chart = BarChart(font_size=s(12))
        box.add_widget(self.chart)
        self.total = Text(font_size=s(15), size_hint_y=None, height=s(30), color=DIM)
        box.add_widget(self.total)

    def load(self, day: date | None) -> None:
        """Fetch ``day`` (the newest stored day if None or no longer stored) on the worker."""
        api = self.ctx.api

        def fetch():
            days = api.stored_days()
            d = day if day in days else (days[-1] if days else None)
            return days, d, (api.day_readings(d) if d else [])
        self.ctx.worker.submit(fetch, then=self._loaded)

    def _loaded(self, result) -> None:
        self.days, self.day, self.rows = result
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

    def refresh(self) -> None:
        t = self.ctx.tx.t
        day = self.day
        usage = half_hour_usage(day, self.rows) if day else None
        put(self.chart, values=usage.slots if usage else [], bad=usage.bad if usage else [])
        put(self.title, text=t("usage_title", day=day.strftime("%Y/%m/%d") if day else "-"))
        put(self.total, text=(t("usage_total", kwh=usage.total_kwh, n=usage.readings)
                              if usage and usage.readings else t("usage_none")))
        i = self.days.index(day) if day in self.days else -1
        put(self.prev, disabled=i <= 0)
        put(self.next, disabled=i < 0 or i >= len(self.days) - 1)
