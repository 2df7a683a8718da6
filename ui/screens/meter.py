"""The meter display (Fig. 7): present power on a 7-segment readout with the 買電 (forward) and 売電
(reverse) flow marks and the 無計量 mark, the 買電 energy register and, once the house has sold
any, the 売電 register, and when the shown reading was measured."""
from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from ..i18n import stamp
from ..model import flow_marks
from ..widgets import BAD, DIM, GOOD, LIT, SEG_ON, TEXT, Mark, SevenSegment, Text, panel_background, put
from .base import UiContext

UNLIT_LAMP = (0.18, 0.16, 0.16, 1)
EXPORT_SEG = (1.0, 0.80, 0.30, 1)  # the 売電 register, amber beside the green 買電 one


class MeterScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.export_shown = False
        self.flow_state = "unknown"  # forward | no_load | reverse | breaker_open | supply_cut | unmeasured | unknown
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
        self.forward_mark, self.forward_label = Mark(arrow="right"), Text(font_size=s(18))
        self.reverse_mark, self.reverse_label = Mark(arrow="left"), Text(font_size=s(18))
        # the 無計量 mark (5c): a lamp with its word, red while the meter is not measuring
        self.unmeasured_mark = Text(font_size=s(16), halign="center", bold=True)
        self.unmeasured_lamp = panel_background(self.unmeasured_mark, UNLIT_LAMP, s(4))
        self.unmeasured = False
        for w in (self.forward_mark, self.forward_label, self.reverse_mark, self.reverse_label,
                  Widget(), self.unmeasured_mark):
            marks.add_widget(w)
        power.add_widget(marks)
        box.add_widget(power)
        labels = BoxLayout(size_hint_y=0.1, spacing=s(16))
        self.energy_label = Text(font_size=s(16), color=DIM)
        self.export_label = Text(font_size=s(16), color=DIM)
        labels.add_widget(self.energy_label)
        labels.add_widget(self.export_label)
        box.add_widget(labels)
        energy = BoxLayout(size_hint_y=0.26, spacing=s(16))
        self.energy_seg = SevenSegment(digits=8)
        self.export_seg = SevenSegment(digits=8)
        self.export_seg.on_color = EXPORT_SEG  # not a keyword: Kivy takes on_* keywords for event handlers
        energy.add_widget(self.energy_seg)
        energy.add_widget(self.export_seg)
        box.add_widget(energy)
        self.reading_at = Text(font_size=s(16), color=DIM, size_hint_y=0.1)
        box.add_widget(self.reading_at)

    def retext(self) -> None:
        t = self.ctx.tx.t
        self.power_label.text = t("power_now")
        self.power_unit.text = t("power_unit")
        self.energy_label.text = t("energy_register")
        self.forward_label.text = t("forward")
        self.reverse_label.text = t("reverse")
        self.unmeasured_mark.text = t("state_unmeasured")
        self.export_label.text = t("export_register")

    def refresh(self) -> None:
        v = self.ctx.view
        reading = v.last_reading if v else None
        marks = flow_marks(reading, v.breaker if v else None, self.ctx.settings.no_load_w)
        self.forward_mark.mode = marks.forward
        self.reverse_mark.mode = marks.reverse
        self.flow_state = marks.state
        put(self.flow_label, text=self.ctx.tx.t(f"state_{marks.state}"),
            color={"breaker_open": BAD, "supply_cut": BAD, "unmeasured": BAD, "reverse": GOOD}.get(marks.state, LIT))
        self.unmeasured = marks.unmeasured
        self.unmeasured_lamp.rgba = BAD if marks.unmeasured else UNLIT_LAMP
        put(self.unmeasured_mark, color=TEXT if marks.unmeasured else DIM)
        power = (reading or {}).get("power_w")
        self.power_seg.text = "------" if power is None else f"{power:6.0f}"[-6:]
        total = (reading or {}).get("import_wh_total")
        self.energy_seg.text = "--------" if total is None else f"{total / 1000:9.2f}"
        # the 売電 register: shown while selling, and once the house has sold anything
        sold = (reading or {}).get("export_wh_total")
        self.export_shown = marks.state == "reverse" or bool(sold)
        self.export_seg.text = "--------" if sold is None else f"{sold / 1000:9.2f}"
        put(self.export_seg, opacity=1 if self.export_shown else 0)
        put(self.export_label, opacity=1 if self.export_shown else 0)
        at = (reading or {}).get("interval_end")
        hint = {"supply_cut": "supply_cut_hint", "unmeasured": "unmeasured_hint"}.get(marks.state)
        line = f"{self.ctx.tx.t('reading_at')}: {stamp(at)}" if at else ""
        put(self.reading_at, text=self.ctx.tx.t(hint) if hint else line, color=BAD if hint else DIM)

    def blink(self) -> None:
        for mark in (self.forward_mark, self.reverse_mark):
            mark.phase = not mark.phase
