"""The notice line under the top bar: the outcome of the household's last action in plain words
with the next step, in the language shown, until its × is touched (a settled switch goes by itself
after a while). It takes its own row, so it never covers the top bar or cuts a word off."""
from __future__ import annotations

from kivy.clock import Clock
from kivy.uix.boxlayout import BoxLayout

from ..notices import DONE, ERROR, Notice
from ..widgets import ACCENT, MIN_TOUCH, TEXT, Flat, Text, panel_background, put
from .base import UiContext

TONES = {ERROR: (0.45, 0.13, 0.12, 1), DONE: (0.12, 0.35, 0.18, 1)}
DONE_SHOWN_S = 20.0  # a switch that happened stays this long, then the line goes


class NoticeBar:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.notice: Notice | None = None
        self.root = BoxLayout(size_hint_y=None, height=0, opacity=0, spacing=s(6), padding=(s(10), 0, 0, 0))
        self.tone = panel_background(self.root, ACCENT, s(6))
        self.text = Text(font_size=s(17), color=TEXT)
        self.close = Flat(text="×", font_size=s(26), size_hint_x=None, width=s(MIN_TOUCH + 8),
                          tone=(0, 0, 0, 0.25))
        self.close.bind(on_release=lambda *_: self.show(None))
        self.root.add_widget(self.text)
        self.root.add_widget(self.close)
        self.text.bind(texture_size=lambda *_: self._fit())
        self._expire = None

    def show(self, notice: Notice | None) -> None:
        self.notice = notice
        if self._expire is not None:
            self._expire.cancel()
            self._expire = None
        if notice is not None and notice.tone == DONE:
            self._expire = Clock.schedule_once(lambda _dt: self.show(None), DONE_SHOWN_S)
        self.retext()

    def settle(self) -> None:
        """A switch announced in the future tense reads as done once the meter shows it in force."""
        v = self.ctx.view
        if self.notice is not None and self.notice.waiting and v is not None:
            settled = self.notice.settle(v.in_force)
            if settled is not self.notice:
                self.show(settled)

    def retext(self) -> None:
        n = self.notice
        put(self.text, text=n.text(self.ctx.tx) if n else "")
        self.tone.rgba = TONES.get(n.tone, ACCENT) if n else ACCENT
        self._fit()

    def _fit(self) -> None:
        s = self.ctx.s
        shown = self.notice is not None
        put(self.root, opacity=1 if shown else 0, disabled=not shown,
            height=max(s(MIN_TOUCH + 4), self.text.texture_size[1] + s(10)) if shown else 0)

    @property
    def shown(self) -> str:
        return self.text.text if self.notice is not None else ""

