"""The emulation drawer (desktop emulation only): insert and remove virtual cards, set the load or
the solar export, spoof a company's confirmations, cut the supply, stop the broker, open the breaker.
Its head says what it is, what is in each slot, the load and the breaker, and has a close button.

Every action is a call into the emulated system (``smartmeter.attach.EmulationControl``): it runs on
the worker, like every API call."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.modalview import ModalView

from ..model import breaker_is_open
from ..widgets import ACCENT, GO, GREY, MIN_TOUCH, PANEL, STOP, TEXT, Flat, Text, panel_background, put
from .base import UiContext

LOADS_W = (0, 300, 1500, 3000)
SOLAR_W = (500, 2000)
DRAWER_TONE = (0.20, 0.16, 0.26, 1)
SOLAR_TONE = (0.20, 0.40, 0.25, 1)


class EmulationDrawer:
    def __init__(self, ctx: UiContext, emu: Any) -> None:
        self.ctx = ctx
        self.emu = emu
        s = ctx.s
        self.card = emu.cards[0]  # the virtual card the slot buttons insert
        self.popup = ModalView(size_hint=(0.98, 0.98), background_color=(0, 0, 0, 0.5))
        box = BoxLayout(orientation="vertical", padding=s(8), spacing=s(5))
        panel_background(box, DRAWER_TONE, s(10))
        head = BoxLayout(size_hint_y=None, height=s(MIN_TOUCH), spacing=s(6))
        self.title = Text(font_size=s(18), bold=True, size_hint_x=0.2)
        self.state = Text(font_size=s(16), color=TEXT)
        self.close = Flat(text="×", font_size=s(26), size_hint_x=None, width=s(MIN_TOUCH + 8), tone=GREY)
        self.close.bind(on_release=lambda *_: self.dismiss())
        for w in (self.title, self.state, self.close):
            head.add_widget(w)
        box.add_widget(head)

        cards = GridLayout(cols=len(emu.cards), spacing=s(4), size_hint_y=0.17)
        self.cards: dict[str, Flat] = {}  # by card name
        for name in emu.cards:
            self.cards[name] = b = Flat(text=name, font_size=s(16), tone=ACCENT if name == self.card else PANEL)
            b.bind(on_release=lambda _b, n=name: self.pick_card(n))
            cards.add_widget(b)
        box.add_widget(cards)

        slots = GridLayout(cols=len(emu.slots), spacing=s(4), size_hint_y=0.3)
        self.insert = {slot: self._button(slots, s(16), GO, lambda sl=slot: self.run(emu.insert_card, sl, self.card))
                       for slot in emu.slots}
        self.remove = {slot: self._button(slots, s(16), GREY, lambda sl=slot: self.run(emu.remove_card, sl))
                       for slot in emu.slots}
        box.add_widget(slots)

        power = GridLayout(cols=6, spacing=s(4), size_hint_y=0.17)
        self.load = {w: self._button(power, s(16), PANEL, lambda w=w: self.run(emu.set_load, float(w)))
                     for w in LOADS_W}
        self.solar = {w: self._button(power, s(16), SOLAR_TONE, lambda w=w: self.run(emu.set_solar_export, float(w)))
                      for w in SOLAR_W}
        box.add_widget(power)

        switches = GridLayout(cols=4, spacing=s(4), size_hint_y=0.22)
        self.spoof = self._button(switches, s(16), STOP, lambda: self.run(self._toggle_spoof))
        self.supply = self._button(switches, s(16), STOP, lambda: self.run(lambda: emu.set_supply(not emu.supply_on)))
        self.broker = self._button(switches, s(16), STOP, lambda: self.run(lambda: emu.set_broker(not emu.broker_up)))
        self.breaker = self._button(switches, s(16), STOP, lambda: self.run(self._toggle_breaker))
        box.add_widget(switches)
        self.popup.add_widget(box)

    @staticmethod
    def _button(grid: GridLayout, font_size: float, tone, on_touch: Callable[[], None]) -> Flat:
        b = Flat(font_size=font_size, tone=tone)
        b.bind(on_release=lambda _b: on_touch())
        grid.add_widget(b)
        return b

    def _toggle_spoof(self) -> None:  # on the worker, like every emulation call
        emu, card = self.emu, self.card
        emu.set_answer(card, "records" if emu.answer_of(card) == "wrong" else "wrong")

    def _toggle_breaker(self) -> None:
        v = self.ctx.view
        self.emu.set_breaker(not breaker_is_open(v.breaker if v else None))

    def run(self, action: Callable[..., Any], *args: Any) -> None:
        """``action(*args)`` on the worker; then the drawer's texts and the view are refreshed."""
        self.ctx.worker.submit(action, *args, then=lambda _r: (self.retext(), self.ctx.request_view()))

    def pick_card(self, name: str) -> None:
        self.card = name
        for n, b in self.cards.items():
            b.tone = ACCENT if n == name else PANEL
        self.retext()

    def status(self) -> str:
        """What is in each slot, the load, the breaker and the supply, as the emulation reports them."""
        t, emu, v = self.ctx.tx.t, self.emu, self.ctx.view
        parts = [t("drawer_slot", n=sl, card=emu.inserted.get(sl) or t("drawer_no_card")) for sl in emu.slots]
        if emu.solar_w:
            parts.append(t("drawer_solar", w=f"{emu.load_w or 0:.0f}", s=f"{emu.solar_w:.0f}"))
        else:
            parts.append(t("drawer_load", w=f"{emu.load_w:.0f}") if emu.load_w is not None else t("drawer_profile"))
        breaker_open = breaker_is_open(v.breaker if v else None)
        parts.append(t("drawer_breaker", state=t("breaker_open" if breaker_open else "breaker_closed")))
        parts.append(t("drawer_supply_on" if emu.supply_on else "drawer_supply_off"))
        return "  ".join(parts[:len(emu.slots)]) + "\n" + "  ".join(parts[len(emu.slots):])

    def refresh(self) -> None:
        """The head's state line, from the latest view (the breaker) and the emulation's own state."""
        put(self.state, text=self.status())

    def retext(self) -> None:
        t, emu = self.ctx.tx.t, self.emu
        self.title.text = t("drawer_title")
        self.refresh()
        for slot, b in self.insert.items():
            b.text = f"{t('slot', n=slot)}\n{t('emu_insert')}"
        for slot, b in self.remove.items():
            b.text = f"{t('slot', n=slot)}\n{t('emu_remove')}"
        for w, b in self.load.items():
            b.text = t("emu_load", w=w)
        for w, b in self.solar.items():
            b.text = t("emu_solar", w=w)
        self.supply.text = t("emu_supply_cut" if emu.supply_on else "emu_supply_restore")
        self.broker.text = t("emu_broker_off" if emu.broker_up else "emu_broker_on")
        self.breaker.text = t("emu_breaker")
        spoofed = emu.answer_of(self.card) == "wrong"
        self.spoof.text = t("emu_spoof_off" if spoofed else "emu_spoof_on", card=self.card)

    def open(self) -> None:
        self.popup.open()

    def dismiss(self) -> None:
        self.popup.dismiss()

    @property
    def is_open(self) -> bool:
        return self.popup._window is not None
