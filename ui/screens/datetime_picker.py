"""The Fig. 9(a) date-time set popup: a switch date-time stepped by a day, an hour or a minute, or a
weekly rule (the patent's weekly schedule: days of the week and a time, the same rule
``smartmeter appliance contract add --switch weekly:mon@22:00`` makes). Set schedules it, Clear
removes the one set, Back leaves things as they were."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from appliance.domain import SwitchTime
from appliance.schedule import DAYS, parse_switch

from ..i18n import WEEKDAYS
from ..widgets import ACCENT, DIM, GO, GREY, MIN_TOUCH, PANEL, STOP, Flat, Text, panel_background, put
from .base import UiContext

ONCE, WEEKLY = "once", "weekly"
STEPS = (("day", timedelta(days=1)), ("hour", timedelta(hours=1)), ("minute", timedelta(minutes=1)))


@dataclass(frozen=True)
class Step:
    minus: Flat
    plus: Flat


class DateTimePicker:
    def __init__(self, ctx: UiContext, slot: str, start: datetime, on_set: Callable[[SwitchTime], None],
                 on_clear: Callable[[], None], weekly: Sequence = ()) -> None:
        s, t = ctx.s, ctx.tx.t
        self.s, self.tx = ctx.s, ctx.tx
        self.value = start
        self.mode = WEEKLY if weekly else ONCE
        self.days: set[int] = {w.day for w in weekly}  # weekly: 0 Monday .. 6 Sunday
        if weekly:  # the time of the rule set before
            h, m = (int(x) for x in weekly[0].at.split(":"))
            self.value = self.value.replace(hour=h, minute=m)
        self.popup = ModalView(size_hint=(0.92, 0.94), auto_dismiss=False, background_color=(0, 0, 0, 0.6))
        row = s(MIN_TOUCH + 4)  # every button row: taller than the smallest touch target
        box = BoxLayout(orientation="vertical", padding=s(10), spacing=s(6))
        panel_background(box, PANEL, s(10))
        head = BoxLayout(size_hint_y=None, height=row, spacing=s(6))
        head.add_widget(Text(text=t("slot", n=slot) + "  " + t("switch_at"), font_size=s(16), color=DIM))
        self.once = Flat(text=t("mode_once"), font_size=s(17), size_hint_x=0.25)
        self.weekly = Flat(text=t("mode_weekly"), font_size=s(17), size_hint_x=0.25)
        self.once.bind(on_release=lambda *_: self.set_mode(ONCE))
        self.weekly.bind(on_release=lambda *_: self.set_mode(WEEKLY))
        head.add_widget(self.once)
        head.add_widget(self.weekly)
        box.add_widget(head)
        self.value_label = Text(font_size=s(28), halign="center")  # takes the room the rows leave
        box.add_widget(self.value_label)
        steps = BoxLayout(size_hint_y=None, height=row, spacing=s(6))
        self.day, self.hour, self.minute = (self._step(steps, unit, delta) for unit, delta in STEPS)
        box.add_widget(steps)
        week = BoxLayout(size_hint_y=None, height=row, spacing=s(4))
        self.weekdays: list[Flat] = []
        for d, name in enumerate(WEEKDAYS[ctx.tx.index]):
            b = Flat(text=name, font_size=s(18))
            b.bind(on_release=lambda _b, d=d: self.toggle_day(d))
            self.weekdays.append(b)
            week.add_widget(b)
        box.add_widget(week)
        buttons = BoxLayout(spacing=s(8), size_hint_y=None, height=row)
        self.ok = Flat(text=t("set_ok"), font_size=s(18), tone=GO)
        self.clear = Flat(text=t("set_clear"), font_size=s(18), tone=STOP)
        self.back = Flat(text=t("set_back"), font_size=s(18), tone=GREY)
        self.ok.bind(on_release=lambda *_: self._set(on_set))
        self.clear.bind(on_release=lambda *_: (self.popup.dismiss(), on_clear()))
        self.back.bind(on_release=lambda *_: self.popup.dismiss())
        for b in (self.ok, self.clear, self.back):
            buttons.add_widget(b)
        box.add_widget(buttons)
        self.popup.add_widget(box)
        self._show()

    def _step(self, row: BoxLayout, unit: str, delta: timedelta) -> Step:
        s, t = self.s, self.tx.t
        step = Step(minus=Flat(text=t("step_down"), font_size=s(26), tone=GREY, size_hint_x=None, width=s(64)),
                    plus=Flat(text=t("step_up"), font_size=s(26), tone=GREY, size_hint_x=None, width=s(64)))
        step.minus.bind(on_release=lambda *_: self._move(-delta))
        step.plus.bind(on_release=lambda *_: self._move(delta))
        row.add_widget(step.minus)
        row.add_widget(Text(text=t(unit), font_size=s(18), halign="center"))
        row.add_widget(step.plus)
        return step

    def _move(self, delta: timedelta) -> None:
        self.value += delta
        self._show()

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._show()

    def toggle_day(self, day: int) -> None:
        self.days ^= {day}
        self._show()

    def switch(self) -> SwitchTime | None:
        """What Set schedules: the date-time, or the weekly rule parsed as the CLI's is (None: no day picked)."""
        if self.mode == ONCE:
            return SwitchTime(at=self.value)
        if not self.days:
            return None
        at = self.value.strftime("%H:%M")
        return parse_switch({"weekly": [{"day": DAYS[d], "at": at} for d in sorted(self.days)]})

    def _set(self, on_set: Callable[[SwitchTime], None]) -> None:
        switch = self.switch()
        if switch is not None:
            self.popup.dismiss()
            on_set(switch)

    def _show(self) -> None:
        weekly = self.mode == WEEKLY
        switch = self.switch()
        text = self.tx.t("weekly_pick") if switch is None else self.tx.switch(switch)
        put(self.value_label, text=text)
        put(self.once, tone=GREY if weekly else ACCENT)
        put(self.weekly, tone=ACCENT if weekly else GREY)
        put(self.day.minus, disabled=weekly)
        put(self.day.plus, disabled=weekly)
        for d, b in enumerate(self.weekdays):
            put(b, disabled=not weekly, tone=ACCENT if d in self.days and weekly else GREY)
        put(self.ok, disabled=switch is None)

    def open(self) -> None:
        self.popup.open()

    @property
    def is_open(self) -> bool:
        return self.popup._window is not None
