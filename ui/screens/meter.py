"""The meter display (Fig. 7): present power on a 7-segment readout with the forward and reverse
flow marks, the energy register, and when the shown reading was measured."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from ..i18n import stamp
from ..model import flow_marks
from ..widgets import BAD, DIM, GOOD, LIT, SEG_ON, Mark, SevenSegment, Text, panel_background, put
from .base import UiContext


class MeterScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.flow_state = "unknown"  # forward | no_load | reverse | breaker_open | unknown
        self.root = box = BoxLayout(orientation="vertical", padding=s(14), spacing=s(6))
        panel_background(box, (0.05, 0.07, 0.06, 1), radius=s(10))
        row = BoxLayout(size_hint_y=0.16)
        self.power_label = Text(font_size=s(18), color=DIM)
        self.flow_label = Text(font_size=s(20), halign="right", bold=True)
        row.add_widget(self.power_label)
        row.add_widget(self.flow_label)
        box.add_widget(row)
        power = BoxLayout(size_hint_y=0.38, spacing=s(8))
        self.power_seg = SevenSegment(digits=6)
        power.add_widget(self.power_seg)
        self.power_unit = Text(font_size=s(34), size_hint_x=0.12, color=SEG_ON)
        power.add_widget(self.power_unit)
        marks = GridLayout(cols=2, size_hint_x=0.26, spacing=s(4))
        self.forward_mark, self.forward_label = Mark(arrow="right"), Text(font_size=s(16))
        self.reverse_mark, self.reverse_label = Mark(arrow="left"), Text(font_size=s(16))
        for w in (self.forward_mark, self.forward_label, self.reverse_mark, self.reverse_label):
            marks.add_widget(w)
        power.add_widget(marks)
        box.add_widget(power)
        self.energy_label = Text(font_size=s(16), color=DIM, size_hint_y=0.1)
        box.add_widget(self.energy_label)
        energy = BoxLayout(size_hint_y=0.26)
        self.energy_seg = SevenSegment(digits=8)
        energy.add_widget(self.energy_seg)
        energy.add_widget(Widget(size_hint_x=0.38))
        box.add_widget(energy)
        self.reading_at = Text(font_size=s(14), color=DIM, size_hint_y=0.1)
        box.add_widget(self.reading_at)

    def retext(self) -> None:
        t = self.ctx.tx.t
        self.power_label.text = t("power_now")
        self.power_unit.text = t("power_unit")
        self.energy_label.text = t("energy_register")
        self.forward_label.text = t("forward")
        self.reverse_label.text = t("reverse")

    def refresh(self) -> None:
        v = self.ctx.view
        reading = v.last_reading if v else None
        marks = flow_marks(reading, v.breaker if v else None, self.ctx.settings.no_load_w)
        self.forward_mark.mode = marks.forward
        self.reverse_mark.mode = marks.reverse
        self.flow_state = marks.state
        put(self.flow_label, text=self.ctx.tx.t(f"state_{marks.state}"),
            color={"breaker_open": BAD, "reverse": GOOD}.get(marks.state, LIT))
        power = (reading or {}).get("power_w")
        self.power_seg.text = "------" if power is None else f"{power:6.0f}"[-6:]
        total = (reading or {}).get("import_wh_total")
        self.energy_seg.text = "--------" if total is None else f"{total / 1000:9.2f}"
        at = (reading or {}).get("interval_end")
        put(self.reading_at, text=f"{self.ctx.tx.t('reading_at')}: {stamp(at)}" if at else "")

    def blink(self) -> None:
        for mark in (self.forward_mark, self.reverse_mark):
            mark.phase = not mark.phase
