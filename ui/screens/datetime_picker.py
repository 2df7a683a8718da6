"""The Fig. 9(a) date-time set popup: a switch date-time stepped by a day, an hour or a minute;
Set schedules it, Clear removes the one set, Back leaves things as they were."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.modalview import ModalView

from ..widgets import BAD, DIM, GOOD, GREY, PANEL, Flat, Text, panel_background
from .base import UiContext


@dataclass(frozen=True)
class Step:
    minus: Flat
    plus: Flat


class DateTimePicker:
    def __init__(self, ctx: UiContext, slot: str, start: datetime, on_set: Callable[[datetime], None],
                 on_clear: Callable[[], None]) -> None:
        s, t = ctx.s, ctx.tx.t
        self.s, self.tx = ctx.s, ctx.tx
        self.value = start
        self.popup = ModalView(size_hint=(0.7, 0.8), auto_dismiss=False, background_color=(0, 0, 0, 0.6))
        box = BoxLayout(orientation="vertical", padding=s(12), spacing=s(8))
        panel_background(box, PANEL, s(10))
        box.add_widget(Text(text=t("slot", n=slot) + "  " + t("switch_at"), font_size=s(15), color=DIM,
                            size_hint_y=0.1))
        self.value_label = Text(font_size=s(26), halign="center", size_hint_y=0.22)
        box.add_widget(self.value_label)
        grid = GridLayout(cols=3, spacing=s(6), size_hint_y=0.45)
        self.day, self.hour, self.minute = (self._step(grid, unit, delta) for unit, delta in (
            ("day", timedelta(days=1)), ("hour", timedelta(hours=1)), ("minute", timedelta(minutes=1))))
        box.add_widget(grid)
        buttons = BoxLayout(spacing=s(8), size_hint_y=0.23)
        self.ok = Flat(text=t("set_ok"), font_size=s(18), tone=GOOD)
        self.clear = Flat(text=t("set_clear"), font_size=s(18), tone=BAD)
        self.back = Flat(text=t("set_back"), font_size=s(18), tone=GREY)
        self.ok.bind(on_release=lambda *_: (self.popup.dismiss(), on_set(self.value)))
        self.clear.bind(on_release=lambda *_: (self.popup.dismiss(), on_clear()))
        self.back.bind(on_release=lambda *_: self.popup.dismiss())
        for b in (self.ok, self.clear, self.back):
            buttons.add_widget(b)
        box.add_widget(buttons)
        self.popup.add_widget(box)
        self._show()

    def _step(self, grid: GridLayout, unit: str, delta: timedelta) -> Step:
        s, t = self.s, self.tx.t
        step = Step(minus=Flat(text=t("step_down"), font_size=s(24), tone=GREY),
                    plus=Flat(text=t("step_up"), font_size=s(24), tone=GREY))
        step.minus.bind(on_release=lambda *_: self._move(-delta))
        step.plus.bind(on_release=lambda *_: self._move(delta))
        grid.add_widget(step.minus)
        grid.add_widget(Text(text=t(unit), font_size=s(17), halign="center"))
        grid.add_widget(step.plus)
        return step

    def _move(self, delta: timedelta) -> None:
        self.value += delta
        self._show()

    def _show(self) -> None:
        self.value_label.text = self.tx.when(self.value)

    def open(self) -> None:
        self.popup.open()

    @property
    def is_open(self) -> bool:
        return self.popup._window is not None
