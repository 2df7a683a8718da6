"""The Kivy touch UI: a thin client of the meter core through :class:`appliance.api.MeterAPI`.

Every API call runs on :class:`ui.model.Worker`'s thread; results come back to the UI thread with
``Clock.schedule_once``. Screens: meter display (Fig. 7), usage, card panel (Fig. 9(a) or 9(b),
chosen by config), contracts, alerts; plus the emulation drawer when running ``--emulate``.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Callable

from appliance.clock import JST

from .i18n import CJK_FONT, CJK_FONT_BOLD, Texts
from .model import (CardSlots, CompanyPicker, Worker, breaker_is_open, entry_key, flow_marks, half_hour_usage,
                    is_in_force)

log = logging.getLogger(__name__)

_FONT_DONE = False


def prepare_kivy(size: tuple[int, int] = (800, 480), fullscreen: bool = False) -> None:
    """Window size and the CJK font, before the first Kivy window import. Call once per process."""
    global _FONT_DONE
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy logs through ours; it leaves the root level alone
    from kivy.config import Config

    Config.set("graphics", "width", str(size[0]))
    Config.set("graphics", "height", str(size[1]))
    Config.set("graphics", "resizable", "0" if fullscreen else "1")
    Config.set("graphics", "fullscreen", "auto" if fullscreen else "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("kivy", "exit_on_escape", "0" if fullscreen else "1")
    if fullscreen:
        Config.set("graphics", "show_cursor", "0")
    if not _FONT_DONE:
        from kivy.core.text import DEFAULT_FONT, LabelBase

        # Registered once for the whole app: every Label draws Japanese with Noto Sans CJK.
        LabelBase.register(DEFAULT_FONT, CJK_FONT, fn_bold=CJK_FONT_BOLD if os.path.exists(CJK_FONT_BOLD) else None)
        _FONT_DONE = True


@dataclass
class UiSettings:
    panel: str = "a"  # a: Fig. 9(a) three slots; b: Fig. 9(b) one slot + company list
    language: str = "ja"
    slots: tuple[str, ...] = ("1", "2", "3")
    panel_b_slot: str = "1"
    refresh_s: float = 1.0
    no_load_w: float = 5.0


def build_app_class():
    """Import Kivy lazily (after :func:`prepare_kivy`) and return the App class."""
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.floatlayout import FloatLayout
    from kivy.uix.gridlayout import GridLayout
    from kivy.uix.modalview import ModalView
    from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager
    from kivy.uix.scrollview import ScrollView
    from kivy.uix.widget import Widget

    from .widgets import (ACCENT, BAD, BG, DIM, GOOD, GREY, LIT, PANEL, TEXT, BarChart, Flat, Mark, SevenSegment,
                          Text, panel_background, put)

    class SmartMeterApp(App):
        title = "smartmeter"

        def __init__(self, api, cards: CardSlots, settings: UiSettings, emulation=None, **kw):
            super().__init__(**kw)
            self.api = api
            self.cards = cards
            self.settings = settings
            self.emulation = emulation
            self.tx = Texts(settings.language)
            self.view = None
            self.widgets: dict[str, Any] = {}  # named widgets, for the tests' touches
            self.status_text = ""
            self.frames = 0
            self._view_pending = False
            self.picker = CompanyPicker()
            self.usage_day: date | None = None
            self.usage_days: list[date] = []
            self.usage_rows: list[dict] = []
            self.scheduled_popup = None
            # Screens are built once; refreshes update these rows in place (no rebuild on refresh or touch).
            self._contract_rows: list = []
            self._contract_specs: list = []
            self._alert_lines: list = []
            self._alert_specs: list | None = None
            self._picker_items: list = []
            self._picker_specs: list | None = None
            self._picker_empty = None

        # -- plumbing ----------------------------------------------------------------------------
        def post(self, fn: Callable[[], None]) -> None:
            Clock.schedule_once(lambda _dt: fn(), 0)

        def s(self, px: float) -> float:
            return px * self.scale

        def name(self, key: str, widget):
            self.widgets[key] = widget
            return widget

        def build(self):
            Window.clearcolor = BG
            self.scale = min(Window.width / 800.0, Window.height / 480.0)
            self.worker = Worker(self.post)
            self.cards.changed = lambda: self.post(self._cards_changed)
            # The meter keeps the Fig. 9(b) list: each verified card is stored through the worker.
            self.cards.remember = lambda raw, slot: self.worker.submit(self.api.remember_card, raw, slot)
            root = FloatLayout()
            col = BoxLayout(orientation="vertical", padding=self.s(6), spacing=self.s(6))
            col.add_widget(self._top_bar())
            self.sm = ScreenManager(transition=NoTransition())
            # Kivy clips a ScreenManager with a stencil: two full-area draws and a stencil test on every
            # pixel, every frame. Without transitions one screen fills it exactly, so nothing to clip.
            self.sm.canvas.before.clear()
            self.sm.canvas.after.clear()
            for name, make in (("meter", self._meter_screen), ("usage", self._usage_screen),
                               ("panel", self._panel_screen), ("contracts", self._contracts_screen),
                               ("alerts", self._alerts_screen)):
                scr = Screen(name=name)
                scr.add_widget(make())
                self.sm.add_widget(scr)
            col.add_widget(self.sm)
            col.add_widget(self._nav_bar())
            root.add_widget(col)
            if self.emulation is not None:
                self.drawer = self._drawer()
            Clock.schedule_interval(self._blink, 0.5)
            Clock.schedule_interval(lambda dt: self.request_view(), self.settings.refresh_s)
            Clock.schedule_interval(self._count_frame, 0)
            self.request_view()
            self.worker.submit(self.restore_cards)
            self.load_usage(None)
            self.refresh_texts()
            return root

        def restore_cards(self) -> int:
            """On the worker: the cards the meter stored before this start, verified again (CPU work);
            ``restore`` posts the refresh of the list."""
            return self.cards.restore(self.api.stored_cards())

        def _count_frame(self, dt):
            self.frames += 1

        def on_stop(self):
            self.worker.stop()

        def _cards_changed(self):
            self.refresh_cards()
            self.refresh_alerts()

        def request_view(self):
            if self._view_pending:
                return
            self._view_pending = True
            self.worker.submit(self.api.view, then=self.apply_view, fail=self._view_failed)

        def _view_failed(self, exc):
            self._view_pending = False
            self.flash(str(exc), BAD)

        def apply_view(self, view):
            self._view_pending = False
            self.view = view
            self.refresh_meter()
            self.refresh_cards()
            self.refresh_contracts()
            self.refresh_alerts()
            self.refresh_top()

        def flash(self, text: str, tone=ACCENT):
            self.status_text = text
            put(self.widgets["status"], text=text, color=tone)

        def show(self, screen: str):
            self.sm.current = screen
            for key in ("meter", "usage", "panel", "contracts", "alerts"):
                put(self.widgets[f"nav_{key}"], tone=ACCENT if key == screen else PANEL)
            if screen == "usage":
                self.load_usage(self.usage_day)

        # -- top and bottom bars -----------------------------------------------------------------
        def _top_bar(self):
            bar = BoxLayout(size_hint_y=None, height=self.s(40), spacing=self.s(6))
            bar.add_widget(self.name("title", Text(font_size=self.s(20), bold=True, size_hint_x=0.26)))
            bar.add_widget(self.name("status", Text(font_size=self.s(14), size_hint_x=0.40, color=DIM)))
            bar.add_widget(self.name("link", Text(font_size=self.s(14), size_hint_x=0.18, halign="right")))
            bar.add_widget(self.name("clock", Text(font_size=self.s(15), size_hint_x=0.16, halign="right")))
            lang = self.name("lang", Flat(font_size=self.s(15), size_hint_x=None, width=self.s(84), tone=GREY))
            lang.bind(on_release=lambda *_: self.toggle_language())
            bar.add_widget(lang)
            return bar

        def _nav_bar(self):
            bar = BoxLayout(size_hint_y=None, height=self.s(52), spacing=self.s(6))
            for key in ("meter", "usage", "panel", "contracts", "alerts"):
                b = self.name(f"nav_{key}", Flat(font_size=self.s(18), tone=ACCENT if key == "meter" else PANEL))
                b.bind(on_release=lambda _b, k=key: self.show(k))
                bar.add_widget(b)
            if self.emulation is not None:
                b = self.name("nav_drawer", Flat(font_size=self.s(15), tone=(0.45, 0.30, 0.60, 1),
                                                 size_hint_x=0.8))
                b.bind(on_release=lambda *_: self.drawer.open())
                bar.add_widget(b)
            return bar

        def refresh_top(self):
            v = self.view
            if v is None:
                return
            put(self.widgets["clock"], text=v.now.astimezone(JST).strftime("%m/%d %H:%M:%S"))
            link = v.link or {}
            ok = bool(link.get("connected"))
            put(self.widgets["link"], text=self.tx.t("link_ok" if ok else "link_down") + (
                "  " + self.tx.t("queued", n=v.queued) if v.queued else ""), color=GOOD if ok else BAD)

        def toggle_language(self):
            self.tx.toggle()
            self.refresh_texts()

        def refresh_texts(self):
            t = self.tx.t
            self.widgets["title"].text = t("app_title")
            self.widgets["lang"].text = t("lang_toggle")
            for key, text in (("meter", "tab_meter"), ("usage", "tab_usage"), ("panel", "tab_panel"),
                              ("contracts", "tab_contracts"), ("alerts", "tab_alerts")):
                self.widgets[f"nav_{key}"].text = t(text)
            if "nav_drawer" in self.widgets:
                self.widgets["nav_drawer"].text = t("drawer")
            for key in ("power_label", "energy_label", "export_label"):
                pass
            self.widgets["power_label"].text = t("power_now")
            self.widgets["energy_label"].text = t("energy_register") + " kWh"
            self.widgets["forward_label"].text = t("forward")
            self.widgets["reverse_label"].text = t("reverse")
            self.widgets["usage_prev"].text = t("prev_day")
            self.widgets["usage_next"].text = t("next_day")
            if self.settings.panel == "b":
                for key, text in (("b_select", "select"), ("b_ok", "ok"), ("b_cancel", "cancel")):
                    self.widgets[key].text = t(text)
                self.widgets["b_title"].text = t("panel_b_title")
            if self.emulation is not None:
                self._drawer_texts()
            self.refresh_meter()
            self.refresh_cards()
            self.refresh_contracts()
            self.refresh_alerts()
            self.refresh_usage()
            self.refresh_top()

        # -- meter display (Fig. 7) ----------------------------------------------------------------
        def _meter_screen(self):
            box = BoxLayout(orientation="vertical", padding=self.s(14), spacing=self.s(6))
            panel_background(box, (0.05, 0.07, 0.06, 1), radius=self.s(10))
            row = BoxLayout(size_hint_y=0.16)
            row.add_widget(self.name("power_label", Text(font_size=self.s(18), color=DIM)))
            row.add_widget(self.name("flow_state", Text(font_size=self.s(20), halign="right", bold=True)))
            box.add_widget(row)
            power = BoxLayout(size_hint_y=0.38, spacing=self.s(8))
            power.add_widget(self.name("power_seg", SevenSegment(digits=6)))
            power.add_widget(Text(text="W", font_size=self.s(34), size_hint_x=0.12, color=(0.35, 1.0, 0.55, 1)))
            marks = GridLayout(cols=2, size_hint_x=0.26, spacing=self.s(4))
            marks.add_widget(self.name("mark_forward", Mark(arrow="right")))
            marks.add_widget(self.name("forward_label", Text(font_size=self.s(16))))
            marks.add_widget(self.name("mark_reverse", Mark(arrow="left")))
            marks.add_widget(self.name("reverse_label", Text(font_size=self.s(16))))
            power.add_widget(marks)
            box.add_widget(power)
            box.add_widget(self.name("energy_label", Text(font_size=self.s(16), color=DIM, size_hint_y=0.1)))
            energy = BoxLayout(size_hint_y=0.26)
            energy.add_widget(self.name("energy_seg", SevenSegment(digits=8)))
            energy.add_widget(Widget(size_hint_x=0.38))
            box.add_widget(energy)
            box.add_widget(self.name("reading_at", Text(font_size=self.s(14), color=DIM, size_hint_y=0.1)))
            return box

        def refresh_meter(self):
            v = self.view
            reading = v.last_reading if v else None
            marks = flow_marks(reading, v.breaker if v else None, self.settings.no_load_w)
            self.widgets["mark_forward"].mode = marks.forward
            self.widgets["mark_reverse"].mode = marks.reverse
            self.flow_state = marks.state
            put(self.widgets["flow_state"], text=self.tx.t(f"state_{marks.state}"),
                color={"breaker_open": BAD, "reverse": GOOD}.get(marks.state, LIT))
            power = (reading or {}).get("power_w")
            self.widgets["power_seg"].text = "------" if power is None else f"{power:6.0f}"[-6:]
            total = (reading or {}).get("import_wh_total")
            self.widgets["energy_seg"].text = "--------" if total is None else f"{total / 1000:9.2f}"
            at = (reading or {}).get("interval_end")
            put(self.widgets["reading_at"], text=f"{self.tx.t('reading_at')}: {_jst(at)}" if at else "")

        def _blink(self, dt):
            for key in ("mark_forward", "mark_reverse"):
                m = self.widgets[key]
                m.phase = not m.phase

        # -- usage ------------------------------------------------------------------------------
        def _usage_screen(self):
            box = BoxLayout(orientation="vertical", padding=self.s(8), spacing=self.s(6))
            head = BoxLayout(size_hint_y=None, height=self.s(44), spacing=self.s(6))
            prev = self.name("usage_prev", Flat(font_size=self.s(16), size_hint_x=0.22))
            prev.bind(on_release=lambda *_: self.usage_step(-1))
            nxt = self.name("usage_next", Flat(font_size=self.s(16), size_hint_x=0.22))
            nxt.bind(on_release=lambda *_: self.usage_step(1))
            head.add_widget(prev)
            head.add_widget(self.name("usage_title", Text(font_size=self.s(17), halign="center")))
            head.add_widget(nxt)
            box.add_widget(head)
            box.add_widget(self.name("usage_chart", BarChart(font_size=self.s(12))))
            box.add_widget(self.name("usage_total", Text(font_size=self.s(15), size_hint_y=None, height=self.s(30),
                                                         color=DIM)))
            return box

        def load_usage(self, day: date | None):
            def fetch():
                days = self.api.stored_days()
                d = day if day in days else (days[-1] if days else None)
                return days, d, (self.api.day_readings(d) if d else [])
            self.worker.submit(fetch, then=self._usage_loaded)

        def _usage_loaded(self, result):
            self.usage_days, self.usage_day, self.usage_rows = result
            self.refresh_usage()

        def usage_step(self, step: int):
            if self.usage_day is None or not self.usage_days:
                return
            i = max(0, min(len(self.usage_days) - 1, self.usage_days.index(self.usage_day) + step))
            self.load_usage(self.usage_days[i])

        def refresh_usage(self):
            day = self.usage_day
            usage = half_hour_usage(day, self.usage_rows) if day else None
            put(self.widgets["usage_chart"], values=usage.slots if usage else [], bad=usage.bad if usage else [])
            put(self.widgets["usage_title"], text=self.tx.t("usage_title", day=day.strftime("%Y/%m/%d") if day else "-"))
            put(self.widgets["usage_total"], text=(self.tx.t("usage_total", kwh=usage.total_kwh, n=usage.readings)
                                                   if usage and usage.readings else self.tx.t("usage_none")))
            i = self.usage_days.index(day) if day in self.usage_days else -1
            put(self.widgets["usage_prev"], disabled=i <= 0)
            put(self.widgets["usage_next"], disabled=i < 0 or i >= len(self.usage_days) - 1)

        # -- card panel ----------------------------------------------------------------------------
        def _panel_screen(self):
            return self._panel_a() if self.settings.panel == "a" else self._panel_b()

        def _panel_a(self):
            row = BoxLayout(spacing=self.s(8), padding=self.s(2))
            for slot in self.settings.slots:
                col = BoxLayout(orientation="vertical", padding=self.s(8), spacing=self.s(6))
                panel_background(col, PANEL, self.s(8))
                col.add_widget(self.name(f"slot{slot}_title", Text(font_size=self.s(15), color=DIM,
                                                                    size_hint_y=0.12)))
                col.add_widget(self.name(f"slot{slot}_card", Text(font_size=self.s(16), size_hint_y=0.24,
                                                                   valign="top")))
                sel = self.name(f"slot{slot}_select", Flat(font_size=self.s(19), size_hint_y=0.26, bold=True))
                sel.bind(on_release=lambda _b, s=slot: self.select_card(s))
                col.add_widget(sel)
                col.add_widget(self.name(f"slot{slot}_when_label", Text(font_size=self.s(13), color=DIM,
                                                                         size_hint_y=0.08)))
                col.add_widget(self.name(f"slot{slot}_when", Text(font_size=self.s(18), size_hint_y=0.12,
                                                                   halign="center")))
                dt = self.name(f"slot{slot}_set", Flat(font_size=self.s(15), size_hint_y=0.16, tone=GREY))
                dt.bind(on_release=lambda _b, s=slot: self.open_datetime(s))
                col.add_widget(dt)
                row.add_widget(col)
            return row

        def _panel_b(self):
            row = BoxLayout(spacing=self.s(8), padding=self.s(2))
            slot = self.settings.panel_b_slot
            left = BoxLayout(orientation="vertical", size_hint_x=0.34, padding=self.s(8), spacing=self.s(6))
            panel_background(left, PANEL, self.s(8))
            left.add_widget(self.name(f"slot{slot}_title", Text(font_size=self.s(15), color=DIM, size_hint_y=0.15)))
            left.add_widget(self.name(f"slot{slot}_card", Text(font_size=self.s(16), valign="top")))
            row.add_widget(left)
            right = BoxLayout(orientation="vertical", spacing=self.s(6))
            right.add_widget(self.name("b_title", Text(font_size=self.s(16), color=DIM, size_hint_y=None,
                                                       height=self.s(28))))
            scroll = self.name("b_scroll", ScrollView(do_scroll_x=False, bar_width=self.s(6)))
            lst = self.name("b_list", GridLayout(cols=1, spacing=self.s(6), size_hint_y=None))
            lst.bind(minimum_height=lst.setter("height"))
            scroll.add_widget(lst)
            right.add_widget(scroll)
            buttons = BoxLayout(size_hint_y=None, height=self.s(56), spacing=self.s(8))
            for key, action, tone in (("b_select", self.picker_select, ACCENT), ("b_ok", self.picker_ok, GOOD),
                                      ("b_cancel", self.picker_cancel, GREY)):
                b = self.name(key, Flat(font_size=self.s(20), tone=tone, bold=True))
                b.bind(on_release=lambda _b, a=action: a())
                buttons.add_widget(b)
            right.add_widget(buttons)
            row.add_widget(right)
            return row

        def _slot_text(self, st) -> str:
            if st is None or not st.present:
                return self.tx.t("slot_empty")
            if st.reading:
                return self.tx.t("slot_reading")
            if st.problem:
                return "[color=ff6b5e]" + self.tx.reason(st.problem) + "[/color]"
            e = st.company
            kind = self.tx.t("power_company" if e["kind"] == "supply" else "data_company")
            return f"[b]{e['name']}[/b]\n{kind}" + (f" / {e['menu']}" if e.get("menu") else "")

        def refresh_cards(self):
            snap = self.cards.snapshot()
            in_force = self.view.in_force if self.view else []
            slots = self.settings.slots if self.settings.panel == "a" else (self.settings.panel_b_slot,)
            for slot in slots:
                st = snap.get(slot)
                put(self.widgets[f"slot{slot}_title"], text=self.tx.t("slot", n=slot))
                put(self.widgets[f"slot{slot}_card"], markup=True, text=self._slot_text(st))
                if self.settings.panel != "a":
                    continue
                lit = st is not None and is_in_force(st.company, in_force)
                sel = self.widgets[f"slot{slot}_select"]
                put(sel, text=self.tx.t("card_select") + ("\n" + self.tx.t("in_force") if lit else ""),
                    tone=LIT if lit else (ACCENT if st is not None and st.verified else GREY),
                    color=(0.1, 0.1, 0.1, 1) if lit else TEXT)
                sel.lit = lit
                put(self.widgets[f"slot{slot}_when_label"], text=self.tx.t("switch_at"))
                when = self.widgets[f"slot{slot}_when"]
                pending_ids = {p["id"] for p in (self.view.pending if self.view else [])}
                at = st.switch_at if st is not None and st.change_id in pending_ids else None
                put(when, text=self.tx.when(at), color=TEXT if at else GREY)  # unset: grey (invalid)
                when.is_set = at is not None
                put(self.widgets[f"slot{slot}_set"], text=self.tx.t("datetime_set"))
            if self.settings.panel == "b":
                self.picker.update(self.cards.entries(), in_force)
                self.refresh_picker()

        def select_card(self, slot: str):
            change = self.cards.immediate_change(slot)
            if change is None:
                return
            self.flash(self.tx.t("switched", name=change.company.name))
            self.worker.submit(self.api.submit_change, change, then=lambda _id: self.request_view(),
                               fail=self.rejected)

        def rejected(self, exc):
            self.flash(self.tx.t("rejected", r=self.tx.reason({"reason": str(exc),
                                                                "reason_ja": getattr(exc, "reason_ja", None)})), BAD)

        # date-time set
        def open_datetime(self, slot: str):
            if self.cards.snapshot()[slot].verified is None:
                return
            now = datetime.now(JST).replace(second=0, microsecond=0)
            st = self.cards.snapshot()[slot]
            value = [st.switch_at.astimezone(JST) if st.switch_at else now + timedelta(minutes=2)]
            view = ModalView(size_hint=(0.7, 0.8), auto_dismiss=False, background_color=(0, 0, 0, 0.6))
            box = BoxLayout(orientation="vertical", padding=self.s(12), spacing=self.s(8))
            panel_background(box, PANEL, self.s(10))
            label = self.name("dt_value", Text(font_size=self.s(26), halign="center", size_hint_y=0.22))
            box.add_widget(Text(text=self.tx.t("slot", n=slot) + "  " + self.tx.t("switch_at"),
                                font_size=self.s(15), color=DIM, size_hint_y=0.1))
            box.add_widget(label)

            def show():
                label.text = self.tx.when(value[0])

            grid = GridLayout(cols=3, spacing=self.s(6), size_hint_y=0.45)
            for unit, delta in (("day", timedelta(days=1)), ("hour", timedelta(hours=1)),
                                ("minute", timedelta(minutes=1))):
                minus = self.name(f"dt_{unit}_minus", Flat(text="−", font_size=self.s(24), tone=GREY))
                plus = self.name(f"dt_{unit}_plus", Flat(text="+", font_size=self.s(24), tone=GREY))
                minus.bind(on_release=lambda _b, d=delta: (value.__setitem__(0, value[0] - d), show()))
                plus.bind(on_release=lambda _b, d=delta: (value.__setitem__(0, value[0] + d), show()))
                grid.add_widget(minus)
                grid.add_widget(Text(text=self.tx.t(unit), font_size=self.s(17), halign="center"))
                grid.add_widget(plus)
            box.add_widget(grid)
            buttons = BoxLayout(spacing=self.s(8), size_hint_y=0.23)
            ok = self.name("dt_ok", Flat(text=self.tx.t("set_ok"), font_size=self.s(18), tone=GOOD))
            clear = self.name("dt_clear", Flat(text=self.tx.t("set_clear"), font_size=self.s(18), tone=BAD))
            back = self.name("dt_back", Flat(text=self.tx.t("set_back"), font_size=self.s(18), tone=GREY))
            ok.bind(on_release=lambda *_: (view.dismiss(), self.schedule(slot, value[0])))
            clear.bind(on_release=lambda *_: (view.dismiss(), self.unschedule(slot)))
            back.bind(on_release=lambda *_: view.dismiss())
            for b in (ok, clear, back):
                buttons.add_widget(b)
            box.add_widget(buttons)
            view.add_widget(box)
            show()
            self.scheduled_popup = view
            view.open()

        def schedule(self, slot: str, at: datetime):
            change = self.cards.scheduled_change(slot, at)
            old = self.cards.snapshot()[slot].change_id
            if change is None:
                return

            def run():
                if old is not None:
                    self.api.cancel_change(old)
                return self.api.submit_change(change)

            def done(change_id):
                self.cards.note_scheduled(slot, at, change_id)
                self.flash(self.tx.t("scheduled", name=change.company.name, at=self.tx.when(at)))
                self.request_view()

            self.worker.submit(run, then=done, fail=self.rejected)

        def unschedule(self, slot: str):
            old = self.cards.snapshot()[slot].change_id
            if old is None:
                return

            def done(_):
                self.cards.note_scheduled(slot, None, None)
                self.flash(self.tx.t("unscheduled"))
                self.request_view()
            self.worker.submit(self.api.cancel_change, old, then=done)

        # Fig. 9(b)
        def refresh_picker(self):
            """The Fig. 9(b) list: one button per entry, kept and updated in place."""
            from kivy.graphics import Color, Line

            lst = self.widgets["b_list"]
            in_force = self.view.in_force if self.view else []
            specs = []
            for i, e in enumerate(self.picker.entries):
                hi = i == self.picker.highlight
                current = is_in_force(e, in_force)
                kind = self.tx.t("power_company" if e["kind"] == "supply" else "data_company")
                specs.append((hi, f"[b]{e['name']}[/b]" + (f"  {e['menu']}" if e.get("menu") else "") + f"\n{kind}" + (
                    f"  ・{self.tx.t('in_force')}" if current else "")))
            key = (specs, None if specs else self.tx.t("panel_b_empty"))
            if key == self._picker_specs:
                return  # nothing changed: no widget touched
            self._picker_specs = key
            if not specs:
                if self._picker_empty is None:
                    self._picker_empty = Text(font_size=self.s(15), color=DIM, size_hint_y=None, height=self.s(60))
                put(self._picker_empty, text=self.tx.t("panel_b_empty"))
                if self._picker_empty.parent is None:
                    lst.add_widget(self._picker_empty, index=len(lst.children))
            elif self._picker_empty is not None and self._picker_empty.parent is not None:
                lst.remove_widget(self._picker_empty)
            while len(self._picker_items) < len(specs):
                b = Flat(markup=True, font_size=self.s(16), size_hint_y=None, height=self.s(62), tone=PANEL,
                         halign="left")
                with b.canvas.after:
                    b._edge_color = Color(*GREY)
                    b._edge = Line(rectangle=(b.x, b.y, b.width, b.height), width=1)
                b.bind(pos=lambda w, _p: setattr(w._edge, "rectangle", (w.x, w.y, w.width, w.height)),
                       size=lambda w, _s: setattr(w._edge, "rectangle", (w.x, w.y, w.width, w.height)),
                       on_release=lambda _b, i=len(self._picker_items): self.picker_point(i))
                self._picker_items.append(b)
            for i, (hi, text) in enumerate(specs):
                b = self._picker_items[i]
                put(b, text=text, tone=LIT if hi else PANEL, color=(0.1, 0.1, 0.1, 1) if hi else TEXT)
                b.highlighted = hi
                b._edge_color.rgba = LIT if hi else GREY
                b._edge.width = self.s(3) if hi else 1
                self.widgets[f"b_item_{i}"] = b
                if b.parent is None:
                    lst.add_widget(b)
            for i in range(len(specs), len(self._picker_items)):
                b = self._picker_items[i]
                if b.parent is not None:
                    lst.remove_widget(b)
                self.widgets.pop(f"b_item_{i}", None)

        def picker_select(self):
            self.picker.select()
            self.refresh_picker()

        def picker_point(self, index: int):
            self.picker.point(index)
            self.refresh_picker()

        def picker_cancel(self):
            self.picker.cancel()
            self.refresh_picker()

        def picker_ok(self):
            e = self.picker.chosen()
            if e is None:
                return
            change = self.cards.catalogue_change(entry_key(e), source=f"card:{self.settings.panel_b_slot}")
            if change is None:
                return
            self.flash(self.tx.t("switched", name=change.company.name))
            self.worker.submit(self.api.submit_change, change, then=lambda _id: self.request_view(),
                               fail=self.rejected)

        # -- contracts ---------------------------------------------------------------------------
        def _contracts_screen(self):
            scroll = ScrollView(do_scroll_x=False, bar_width=self.s(6))
            lst = self.name("contracts_list", GridLayout(cols=1, spacing=self.s(6), size_hint_y=None,
                                                         padding=self.s(4)))
            lst.bind(minimum_height=lst.setter("height"))
            scroll.add_widget(lst)
            return scroll

        def _row(self, text: str, height: float, tone=PANEL, color=TEXT, size=15, padded=True):
            lbl = Text(text=text, markup=True, font_size=self.s(size), size_hint_y=None, height=self.s(height),
                       color=color, padding=(self.s(10), self.s(4)) if padded else (0, 0))
            # a header has no panel: its background stays transparent
            lbl._bg = panel_background(lbl, tone or (0, 0, 0, 0), self.s(6))
            lbl._spec = (text, height, tone, tuple(color), size, padded)
            lbl.min_height = self.s(height)
            lbl.bind(texture_size=self._fit_row)
            return lbl

        @staticmethod
        def _fit_row(lbl, *_):
            """Grow a row to its wrapped text: the height given is a minimum, a long message (a long
            company name, English) takes the lines it needs. A row inside a line (an alert with its
            button) grows the line."""
            box = lbl if lbl.size_hint_y is None else lbl.parent
            if box is not None:
                box.height = max(lbl.min_height, lbl.texture_size[1])

        def _update_row(self, lbl, text: str, height: float, tone=PANEL, color=TEXT, size=15, padded=True):
            """Update a row made by :meth:`_row` in place; only what changed is set (an unchanged text keeps
            its texture)."""
            spec = (text, height, tone, tuple(color), size, padded)
            if lbl._spec == spec:
                return
            lbl._spec = spec
            lbl.min_height = self.s(height)
            put(lbl, text=text, color=color, font_size=self.s(size),
                padding=(self.s(10), self.s(4)) if padded else (0, 0))
            self._fit_row(lbl)
            if tuple(lbl._bg.rgba) != tuple(tone or (0, 0, 0, 0)):
                lbl._bg.rgba = tone or (0, 0, 0, 0)

        def _sync_rows(self, lst, pool: list, specs: list[tuple]) -> None:
            """Show ``specs`` (the arguments of :meth:`_row`) in ``lst``, reusing the row widgets in ``pool``:
            rows are updated in place, added or removed only at the end, never rebuilt."""
            for i, spec in enumerate(specs):
                if i < len(pool):
                    self._update_row(pool[i], *spec)
                else:
                    pool.append(self._row(*spec))
                if pool[i].parent is None:
                    lst.add_widget(pool[i])
            for row in pool[len(specs):]:
                if row.parent is not None:
                    lst.remove_widget(row)

        def contract_specs(self) -> list[tuple]:
            v = self.view
            if v is None:
                return []
            t = self.tx.t
            specs: list[tuple] = [(t("in_force_title"), 24, None, DIM, 15, False)]
            for c in sorted(v.in_force, key=lambda c: c["role"] != "supply"):
                role = t("power_company" if c["role"] == "supply" else "data_company")
                menu = f"   {t('menu')}: {c['menu']}" if c.get("menu") else ""
                since = f"   {t('since')}: {_jst(c['since'])}" if c.get("since") else ""
                specs.append((f"[b]{role}: {c['name'] or c['company']}[/b] ({c['company']}){menu}\n"
                              f"{t('receives')}: {self.tx.data_types(c['data_types'])}{since}", 64))
            specs.append((t("pending"), 24, None, DIM, 15, False))
            if not v.pending:
                specs.append((t("pending_none"), 36, PANEL, DIM))
            def menu_of(p):
                return f": {p['menu']}" if p.get("menu") else ""

            for p in v.pending:
                role = t("power_company" if p["kind"] == "supply" else "data_company")
                when = p["switch"].replace(" JST", "")
                specs.append((f"[b]{_switch_text(when, self.tx)}[/b]  {role}: {p['name'] or p['company']} "
                              f"({t('action_' + p['action'])}{menu_of(p)})\n{t('receives')}: {self.tx.data_types(p['data_types'])}", 64))
            return specs

        def refresh_contracts(self):
            specs = self.contract_specs()
            if specs == self._contract_specs:
                return  # nothing changed: no widget touched
            self._contract_specs = specs
            self._sync_rows(self.widgets["contracts_list"], self._contract_rows, specs)

        # -- alerts ----------------------------------------------------------------------------
        def _alerts_screen(self):
            scroll = ScrollView(do_scroll_x=False, bar_width=self.s(6))
            lst = self.name("alerts_list", GridLayout(cols=1, spacing=self.s(6), size_hint_y=None,
                                                      padding=self.s(4)))
            lst.bind(minimum_height=lst.setter("height"))
            scroll.add_widget(lst)
            return scroll

        def alert_rows(self) -> list[tuple[str, str]]:
            """(kind, text) of every alert shown: link, store alerts, card problems."""
            t = self.tx.t
            out: list[tuple[str, str]] = []
            v = self.view
            if v is not None and v.link is not None and not v.link.get("connected"):
                out.append(("link", f"[b]{t('alert_link')}[/b]\n{t('alert_link_queued', n=v.queued)}"))
            for a in (v.alerts if v else []):
                msg = (a.get("message_ja") if self.tx.lang == "ja" else None) or a.get("message", "")
                detail = a.get("detail") or {}
                brk = detail.get("breaker", v.breaker if v else None)
                brk_open = breaker_is_open(brk) if isinstance(brk, dict) else str(brk).lower() == "open"
                lines = [f"[b]{t('alert_security') if 'security' in a['kind'] else a['kind']}[/b]  {_jst(a['at'])}"]
                if a.get("company_code"):
                    lines.append(t("alert_company", c=a["company_code"]))
                lines.append(t("alert_failed", m=msg))
                if brk is not None:
                    lines.append(t("alert_breaker", state=t("breaker_open" if brk_open else "breaker_closed")))
                out.append((f"alert:{a['id']}", "\n".join(lines)))
            for note in reversed(self.cards.problems[-5:]):
                out.append(("card", f"[b]{t('alert_card')}[/b]  {t('slot', n=note.slot)}  {_jst(note.at)}\n"
                                    f"{self.tx.reason(note.problem)}"))
            return out

        def refresh_alerts(self):
            rows = self.alert_rows()
            specs = rows or [("none", self.tx.t("alerts_none"))]
            if specs == self._alert_specs:
                return  # nothing changed: no widget touched
            self._alert_specs = specs
            lst = self.widgets["alerts_list"]
            for i, (kind, text) in enumerate(specs):
                if kind == "none":
                    h, tone, color = 40, PANEL, DIM
                else:
                    h, color = 30 + 22 * text.count("\n"), TEXT
                    tone = (0.35, 0.16, 0.15, 1) if kind != "card" else (0.33, 0.25, 0.10, 1)
                if i == len(self._alert_lines):
                    line = BoxLayout(size_hint_y=None, spacing=self.s(6))
                    line.lbl = self._row(text, h, tone=tone, color=color)
                    line.lbl.size_hint_y = 1
                    line.add_widget(line.lbl)
                    line.btn = Flat(size_hint_x=None, width=self.s(90), font_size=self.s(15), tone=GREY)
                    line.alert_id = None
                    line.btn.bind(on_release=lambda _b, ln=line: self._clear_alert(ln.alert_id))
                    self._alert_lines.append(line)
                line = self._alert_lines[i]
                self._update_row(line.lbl, text, h, tone=tone, color=color)
                line.lbl.size_hint_y = 1
                self._fit_row(line.lbl)
                line.alert_id = int(kind.split(":")[1]) if kind.startswith("alert:") else None
                if line.alert_id is not None:
                    put(line.btn, text=self.tx.t("clear"))
                    if line.btn.parent is None:
                        line.add_widget(line.btn, index=0)
                elif line.btn.parent is not None:
                    line.remove_widget(line.btn)
                if line.parent is None:
                    lst.add_widget(line)
            for line in self._alert_lines[len(specs):]:
                if line.parent is not None:
                    lst.remove_widget(line)
            put(self.widgets["nav_alerts"], color=(1, 0.55, 0.5, 1) if rows else TEXT)

        def _clear_alert(self, alert_id):
            if alert_id is not None:
                self.worker.submit(self.api.clear_alert, alert_id, then=lambda _r: self.request_view())

        # -- emulation drawer ------------------------------------------------------------------
        def _drawer(self):
            emu = self.emulation
            view = ModalView(size_hint=(0.96, 0.92), background_color=(0, 0, 0, 0.5))
            box = BoxLayout(orientation="vertical", padding=self.s(10), spacing=self.s(6))
            panel_background(box, (0.20, 0.16, 0.26, 1), self.s(10))
            self.drawer_card = emu.cards[0]
            cards = GridLayout(cols=len(emu.cards), spacing=self.s(4), size_hint_y=0.2)
            for name in emu.cards:
                b = self.name(f"emu_card_{name}", Flat(text=name, font_size=self.s(14),
                                                       tone=ACCENT if name == self.drawer_card else PANEL))
                b.bind(on_release=lambda _b, n=name: self._pick_card(n))
                cards.add_widget(b)
            box.add_widget(cards)
            slots = GridLayout(cols=4, spacing=self.s(4), size_hint_y=0.32)
            names = emu.slots
            slots.cols = len(names)
            for slot in names:
                b = self.name(f"emu_insert_{slot}", Flat(font_size=self.s(14), tone=GOOD))
                b.bind(on_release=lambda _b, s=slot: self.emu(emu.insert_card, s, self.drawer_card))
                slots.add_widget(b)
            for slot in names:
                b = self.name(f"emu_remove_{slot}", Flat(font_size=self.s(14), tone=GREY))
                b.bind(on_release=lambda _b, s=slot: self.emu(emu.remove_card, s))
                slots.add_widget(b)
            box.add_widget(slots)
            power = GridLayout(cols=6, spacing=self.s(4), size_hint_y=0.2)
            for w in (0, 300, 1500, 3000):
                b = self.name(f"emu_load_{w}", Flat(font_size=self.s(13)))
                b.bind(on_release=lambda _b, w=w: self.emu(emu.set_load, float(w)))
                power.add_widget(b)
            for w in (500, 2000):
                b = self.name(f"emu_solar_{w}", Flat(font_size=self.s(13), tone=(0.20, 0.40, 0.25, 1)))
                b.bind(on_release=lambda _b, w=w: self.emu(emu.set_solar_export, float(w)))
                power.add_widget(b)
            box.add_widget(power)
            switches = GridLayout(cols=4, spacing=self.s(4), size_hint_y=0.28)
            for key, fn in (("emu_spoof", lambda: emu.set_answer(self.drawer_card, "records" if emu.answer_of(
                                self.drawer_card) == "wrong" else "wrong")),
                            ("emu_supply", lambda: emu.set_supply(not emu.supply_on)),
                            ("emu_broker", lambda: emu.set_broker(not emu.broker_up)),
                            ("emu_breaker", lambda: emu.set_breaker(not breaker_is_open(
                                self.view.breaker if self.view else None)))):
                b = self.name(key, Flat(font_size=self.s(14), tone=BAD))
                b.bind(on_release=lambda _b, f=fn: self.emu(f))
                switches.add_widget(b)
            box.add_widget(switches)
            view.add_widget(box)
            return view

        def _pick_card(self, name: str):
            self.drawer_card = name
            for k, w in self.widgets.items():
                if k.startswith("emu_card_"):
                    w.tone = ACCENT if k == f"emu_card_{name}" else PANEL
            self._drawer_texts()

        def emu(self, fn, *args):
            self.worker.submit(fn, *args, then=lambda _r: (self._drawer_texts(), self.request_view()))

        def _drawer_texts(self):
            t = self.tx.t
            emu = self.emulation
            for k, w in self.widgets.items():
                if k.startswith("emu_insert_"):
                    w.text = f"{t('slot', n=k.rsplit('_', 1)[1])}\n{t('emu_insert')}"
                elif k.startswith("emu_remove_"):
                    w.text = f"{t('slot', n=k.rsplit('_', 1)[1])}\n{t('emu_remove')}"
                elif k.startswith("emu_load_"):
                    w.text = t("emu_load", w=k.rsplit("_", 1)[1])
                elif k.startswith("emu_solar_"):
                    w.text = t("emu_solar", w=k.rsplit("_", 1)[1])
            self.widgets["emu_supply"].text = t("emu_supply_cut" if emu.supply_on else "emu_supply_restore")
            self.widgets["emu_broker"].text = t("emu_broker_off" if emu.broker_up else "emu_broker_on")
            self.widgets["emu_breaker"].text = t("emu_breaker")
            spoofed = emu.answer_of(self.drawer_card) == "wrong"
            self.widgets["emu_spoof"].text = t("emu_spoof_off" if spoofed else "emu_spoof_on", card=self.drawer_card)

    return SmartMeterApp


def _jst(value) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(JST).strftime("%m/%d %H:%M:%S")


def _switch_text(when: str, tx: Texts) -> str:
    if when == "immediate":
        return "即時" if tx.lang == "ja" else "now"
    if when.startswith("weekly"):
        return ("毎週 " if tx.lang == "ja" else "weekly ") + when[len("weekly "):]
    return when.replace("-", "/")
