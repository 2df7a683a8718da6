"""The question asked before a switch (Fig. 9(a) card select): "…に切り換えますか？" with a yes
and a no button; only yes submits the change."""
from __future__ import annotations

from collections.abc import Callable

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.modalview import ModalView

from ..widgets import ACCENT, GREY, PANEL, Flat, Text, panel_background
from .base import UiContext


class ConfirmDialog:
    def __init__(self, ctx: UiContext, question: str, yes: str, on_yes: Callable[[], None]) -> None:
        s, t = ctx.s, ctx.tx.t
        self.popup = ModalView(size_hint=(0.7, 0.5), auto_dismiss=False, background_color=(0, 0, 0, 0.6))
        box = BoxLayout(orientation="vertical", padding=s(16), spacing=s(12))
        panel_background(box, PANEL, s(10))
        self.question = Text(text=question, font_size=s(22), halign="center", bold=True)
        box.add_widget(self.question)
        buttons = BoxLayout(spacing=s(12), size_hint_y=None, height=s(64))
        self.yes = Flat(text=yes, font_size=s(20), tone=ACCENT, bold=True)
        self.no = Flat(text=t("confirm_no"), font_size=s(20), tone=GREY)
        self.yes.bind(on_release=lambda *_: (self.popup.dismiss(), on_yes()))
        self.no.bind(on_release=lambda *_: self.popup.dismiss())
        buttons.add_widget(self.no)
        buttons.add_widget(self.yes)
        box.add_widget(buttons)
        self.popup.add_widget(box)

    def open(self) -> None:
        self.popup.open()

    @property
    def is_open(self) -> bool:
        return self.popup._window is not None
