"""The app shell: top bar, screen manager, nav bar, the refresh loop and the worker. The screens
(``ui.screens``) build and refresh their own widgets; the shell only wires them.

Every API call runs on :class:`ui.model.Worker`'s thread; results come back to the UI thread with
``Clock.schedule_once``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.window import Window
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

from .app import UiSettings
from .i18n import Texts, stamp
from .model import CardSlots, Worker, backlog
from .notices import ERROR, Notice
from .screens.alerts import AlertsScreen
from .screens.base import UiContext
from .screens.contracts import ContractsScreen
from .screens.drawer import EmulationDrawer
from .screens.meter import MeterScreen
from .screens.notice_bar import NoticeBar
from .screens.panel_a import PanelA
from .screens.panel_b import PanelB
from .screens.usage import UsageScreen
from .widgets import ACCENT, BAD, BG, GOOD, GREY, MIN_TOUCH, PANEL, TEXT, Flat, Text, put

# the screens in nav-bar order, with their tab's text
TABS = (("meter", "tab_meter"), ("usage", "tab_usage"), ("panel", "tab_panel"), ("contracts", "tab_contracts"),
        ("alerts", "tab_alerts"))
ALERTS_WAITING = (1, 0.62, 0.58, 1)  # the alerts tab's text while there is something to tell (on PANEL)
DRAWER_TAB = (0.45, 0.30, 0.60, 1)


class TopBar:
    """Title, cloud link (and a backlog only when it is abnormal), the meter's time, language.
    What an action did is told on the notice line under it (:class:`NoticeBar`)."""

    def __init__(self, ctx: UiContext, toggle_language: Callable[[], None]) -> None:
        self.ctx = ctx
        s = ctx.s
        self.root = BoxLayout(size_hint_y=None, height=s(MIN_TOUCH), spacing=s(6))
        self.title = Text(font_size=s(20), bold=True, size_hint_x=0.28)
        self.link = Text(font_size=s(16), size_hint_x=0.40, halign="right")
        self.clock = Text(font_size=s(16), size_hint_x=0.20, halign="right")
        self.lang = Flat(font_size=s(16), size_hint_x=None, width=s(92), tone=GREY)
        self.lang.bind(on_release=lambda *_: toggle_language())
        for w in (self.title, self.link, self.clock, self.lang):
            self.root.add_widget(w)

    def retext(self) -> None:
        t = self.ctx.tx.t
        self.title.text = t("app_title")
        self.lang.text = t("lang_toggle")

    def refresh(self) -> None:
        v, t = self.ctx.view, self.ctx.tx.t
        if v is None:
            return
        put(self.clock, text=stamp(v.now))
        ok = v.link is not None and v.link.connected
        late = backlog(v)
        put(self.link, text=t("link_ok" if ok else "link_down") + ("  " + t(late, n=v.queued) if late else ""),
            color=GOOD if ok and not late else BAD)


class NavBar:
    """One tab per screen (``tabs``, by screen name), and the drawer's button in the emulation."""

    def __init__(self, ctx: UiContext, show: Callable[[str], None], drawer: EmulationDrawer | None) -> None:
        self.ctx = ctx
        s = ctx.s
        self.root = BoxLayout(size_hint_y=None, height=s(56), spacing=s(6))
        self.tabs: dict[str, Flat] = {}
        self.current = "meter"  # the screen shown
        self.alerts_waiting = False
        for name, _ in TABS:
            self.tabs[name] = b = Flat(font_size=s(18), tone=ACCENT if name == "meter" else PANEL)
            b.bind(on_release=lambda _b, n=name: show(n))
            self.root.add_widget(b)
        self.drawer: Flat | None = None
        if drawer is not None:
            self.drawer = Flat(font_size=s(16), tone=DRAWER_TAB, size_hint_x=0.8)
            self.drawer.bind(on_release=lambda *_: drawer.open())
            self.root.add_widget(self.drawer)

    def select(self, screen: str) -> None:
        self.current = screen
        for name, b in self.tabs.items():
            put(b, tone=ACCENT if name == screen else PANEL)
        self.mark_alerts(self.alerts_waiting)

    def mark_alerts(self, waiting: bool) -> None:
        """The alerts tab's text turns red while there is something to tell; white on the active
        tab, where red would not read (contrast under 4.5:1)."""
        self.alerts_waiting = waiting
        active = self.current == "alerts"
        put(self.tabs["alerts"], color=ALERTS_WAITING if waiting and not active else TEXT)

    def retext(self) -> None:
        t = self.ctx.tx.t
        for name, key in TABS:
            self.tabs[name].text = t(key)
        if self.drawer is not None:
            self.drawer.text = t("drawer")


class SmartMeterApp(App):
    title = "smartmeter"

    def __init__(self, api, cards: CardSlots, settings: UiSettings, emulation: Any = None, **kw) -> None:
        super().__init__(**kw)
        self.api = api
        self.cards = cards
        self.settings = settings
        self.emulation = emulation  # smartmeter.attach.EmulationControl: the drawer's actions
        self.tx = Texts(settings.language)
        self.frames = 0  # frames drawn: the tests wait on it
        self._view_pending = False
        self.ctx: UiContext | None = None  # made in build(), with the window's scale

    @property
    def view(self):
        """The latest :class:`appliance.api.MeterView`, None until the first arrives."""
        return self.ctx.view if self.ctx is not None else None

    def post(self, fn: Callable[[], None]) -> None:
        Clock.schedule_once(lambda _dt: fn(), 0)

    def build(self):
        Window.clearcolor = BG
        self.worker = Worker(self.post)
        self.ctx = ctx = UiContext(self.api, self.cards, self.settings, self.tx,
                                   scale=min(Window.width / 800.0, Window.height / 480.0), worker=self.worker,
                                   notify=lambda notice: self.notice.show(notice),
                                   request_view=self.request_view)
        self.cards.changed = lambda: self.post(self._cards_changed)
        # The meter keeps the Fig. 9(b) list: each verified card is stored through the worker.
        self.cards.remember = lambda raw, slot: self.worker.submit(self.api.remember_card, raw, slot)
        self.top = TopBar(ctx, self.toggle_language)
        self.notice = NoticeBar(ctx)
        self.meter = MeterScreen(ctx)
        self.usage = UsageScreen(ctx)
        self.panel = PanelA(ctx) if self.settings.panel == "a" else PanelB(ctx)
        self.contracts = ContractsScreen(ctx)
        self.alerts = AlertsScreen(ctx)
        self.drawer = EmulationDrawer(ctx, self.emulation) if self.emulation is not None else None
        self.nav = NavBar(ctx, self.show, self.drawer)
        self.sm = ScreenManager(transition=NoTransition())
        # Kivy clips a ScreenManager with a stencil: two full-area draws and a stencil test on every
        # pixel, every frame. Without transitions one screen fills it exactly, so nothing to clip.
        self.sm.canvas.before.clear()
        self.sm.canvas.after.clear()
        for (name, _), screen in zip(TABS, (self.meter, self.usage, self.panel, self.contracts, self.alerts)):
            scr = Screen(name=name)
            scr.add_widget(screen.root)
            self.sm.add_widget(scr)
        col = BoxLayout(orientation="vertical", padding=ctx.s(6), spacing=ctx.s(6))
        for part in (self.top.root, self.notice.root, self.sm, self.nav.root):
            col.add_widget(part)
        root = FloatLayout()
        root.add_widget(col)
        Clock.schedule_interval(lambda dt: self.meter.blink(), 0.5)
        Clock.schedule_interval(lambda dt: self.request_view(), self.settings.refresh_s)
        Clock.schedule_interval(self._count_frame, 0)
        self.request_view()
        self.worker.submit(self.restore_cards)
        self.usage.load(None)
        self.refresh_texts()
        return root

    def restore_cards(self) -> int:
        """On the worker: the cards the meter stored before this start, verified again (CPU work);
        ``restore`` posts the refresh of the list."""
        return self.cards.restore(self.api.stored_cards())

    def _count_frame(self, dt) -> None:
        self.frames += 1

    def on_stop(self) -> None:
        self.worker.stop()

    def _cards_changed(self) -> None:
        self.panel.refresh()
        self.refresh_alerts()

    def request_view(self) -> None:
        if self._view_pending:
            return
        self._view_pending = True
        self.worker.submit(self.api.view, then=self.apply_view, fail=self._view_failed)

    def _view_failed(self, exc: Exception) -> None:
        self._view_pending = False
        self.notice.show(Notice("view_failed", tone=ERROR))

    def apply_view(self, view) -> None:
        self._view_pending = False
        self.ctx.view = view
        self.refresh()

    def refresh(self) -> None:
        self.meter.refresh()
        self.panel.refresh()
        self.contracts.refresh()
        self.refresh_alerts()
        self.top.refresh()
        self.notice.settle()
        if self.drawer is not None and self.drawer.is_open:
            self.drawer.refresh()
        if self.sm.current == "usage":
            self.usage.refresh()  # the yen estimate follows the supply contract's menu

    def refresh_alerts(self) -> None:
        self.alerts.refresh()
        self.nav.mark_alerts(self.alerts.has_alerts)

    def show(self, screen: str) -> None:
        self.sm.current = screen
        self.nav.select(screen)
        if screen == "usage":
            self.usage.load(self.usage.day)

    def toggle_language(self) -> None:
        self.tx.toggle()
        self.refresh_texts()

    def refresh_texts(self) -> None:
        for part in (self.top, self.notice, self.nav, self.meter, self.usage, self.panel, self.drawer):
            if part is not None:
                part.retext()
        self.refresh()
        self.usage.refresh()
