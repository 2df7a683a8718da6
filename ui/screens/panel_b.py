"""Card panel (b), Fig. 9(b): one card slot, and a scrolling list of every company or tariff menu
read from cards, power companies and data companies under headings of their own. Select moves the
highlight (the list scrolls to keep it in view), a touch on an entry moves it there, OK switches to
the highlighted entry, Cancel returns the highlight to the contract in force."""
from __future__ import annotations

from kivy.clock import Clock
from kivy.graphics import Color, Line
from kivy.uix.boxlayout import BoxLayout

from ..model import CompanyPicker, entry_key, is_in_force
from ..widgets import ACCENT, DIM, GO, GREY, LIT, ON_LIT, PANEL, TEXT, Flat, Text, panel_background, put
from .base import UiContext, company_kind, slot_text
from .rows import scrolling_list


class EntryButton(Flat):
    """One entry of the list: a flat button with an edge, thick and lit while highlighted."""

    def __init__(self, index: int, scale: float) -> None:
        super().__init__(markup=True, font_size=scale * 16, size_hint_y=None, height=scale * 62, tone=PANEL,
                         halign="left")
        self.index = index  # its place in the list
        self.scale = scale
        self.highlighted = False
        with self.canvas.after:
            self.edge_color = Color(*GREY)
            self.edge = Line(rectangle=(self.x, self.y, self.width, self.height), width=1)
        self.bind(pos=self._frame, size=self._frame)

    def _frame(self, *_) -> None:
        self.edge.rectangle = (self.x, self.y, self.width, self.height)

    def show(self, text: str, highlighted: bool) -> None:
        put(self, text=text, tone=LIT if highlighted else PANEL, color=ON_LIT if highlighted else TEXT)
        self.highlighted = highlighted
        self.edge_color.rgba = LIT if highlighted else GREY
        self.edge.width = self.scale * 3 if highlighted else 1


class CompanyList:
    """The entries of :class:`ui.model.CompanyPicker` as buttons, kept and updated in place."""

    def __init__(self, ctx: UiContext, picker: CompanyPicker) -> None:
        self.ctx = ctx
        self.picker = picker
        self.scroll, self.list = scrolling_list(ctx.scale, padding=0)
        self.items: list[EntryButton] = []  # the entries shown, in the picker's order
        self._pool: list[EntryButton] = []
        self._empty: Text | None = None  # the hint shown while the list is empty
        s = ctx.s
        self.headers = {kind: Text(font_size=s(16), color=DIM, size_hint_y=None, height=s(30), bold=True)
                        for kind in ("supply", "data")}
        self._shown: tuple | None = None

    def refresh(self) -> None:
        tx = self.ctx.tx
        in_force = self.ctx.view.in_force if self.ctx.view else ()
        specs = []
        for i, e in enumerate(self.picker.entries):
            menu = f"  {e['menu']}" if e.get("menu") else ""
            current = f"  ・{tx.t('in_force')}" if is_in_force(e, in_force) else ""
            specs.append((i == self.picker.highlight, e["kind"],
                          f"[b]{e['name']}[/b]{menu}\n{company_kind(tx, e)}{current}"))
        shown = (specs, tx.lang)
        if shown == self._shown:
            return  # nothing changed: no widget touched
        self._shown = shown
        while len(self._pool) < len(specs):
            b = EntryButton(len(self._pool), self.ctx.scale)
            b.bind(on_release=lambda b: self.point(b.index))
            self._pool.append(b)
        for b, (highlighted, _kind, text) in zip(self._pool, specs):
            b.show(text, highlighted)
        self.items = self._pool[:len(specs)]
        # the order shown: each kind under its heading (the picker sorts power companies first)
        order: list = []
        for kind, key in (("supply", "group_power"), ("data", "group_data")):
            mine = [b for b, spec in zip(self.items, specs) if (spec[1] == "supply") == (kind == "supply")]
            if mine:
                put(self.headers[kind], text=tx.t(key))
                order += [self.headers[kind], *mine]
        if not specs:
            order = [self._empty_hint()]
        if list(reversed(self.list.children)) != order:
            self.list.clear_widgets()
            for w in order:
                self.list.add_widget(w)
        self.follow()

    def follow(self) -> None:
        """Keep the highlighted entry in view: OK must never commit a company the household cannot see."""
        i = self.picker.highlight
        if i is not None and i < len(self.items):
            item = self.items[i]
            # after the layout has placed it (a new or re-ordered list has no positions yet)
            Clock.schedule_once(lambda _dt: self._scroll_to(item), 0)

    def _scroll_to(self, item) -> None:
        self.scroll.effect_y.velocity = 0  # a list still coasting from a flick stops where Select put it
        self.scroll.scroll_to(item, padding=self.ctx.s(8), animate=False)

    def _empty_hint(self) -> Text:
        if self._empty is None:
            s = self.ctx.s
            self._empty = Text(font_size=s(16), color=DIM, size_hint_y=None, height=s(60))
        put(self._empty, text=self.ctx.tx.t("panel_b_empty"))
        return self._empty

    def point(self, index: int) -> None:
        self.picker.point(index)
        self.refresh()


class PanelB:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.slot = ctx.settings.panel_b_slot
        self.picker = CompanyPicker()
        self.root = BoxLayout(spacing=s(8), padding=s(2))
        left = BoxLayout(orientation="vertical", size_hint_x=0.34, padding=s(8), spacing=s(6))
        panel_background(left, PANEL, s(8))
        self.slot_title = Text(font_size=s(16), color=DIM, size_hint_y=0.15)
        self.slot_card = Text(font_size=s(16), valign="top")
        left.add_widget(self.slot_title)
        left.add_widget(self.slot_card)
        self.root.add_widget(left)
        right = BoxLayout(orientation="vertical", spacing=s(6))
        self.title = Text(font_size=s(16), color=DIM, size_hint_y=None, height=s(28))
        right.add_widget(self.title)
        self.companies = CompanyList(ctx, self.picker)
        right.add_widget(self.companies.scroll)
        buttons = BoxLayout(size_hint_y=None, height=s(56), spacing=s(8))
        self.select = Flat(font_size=s(20), tone=ACCENT, bold=True)
        self.ok = Flat(font_size=s(20), tone=GO, bold=True)
        self.cancel = Flat(font_size=s(20), tone=GREY, bold=True)
        for button, action in ((self.select, self.on_select), (self.ok, self.on_ok), (self.cancel, self.on_cancel)):
            button.bind(on_release=lambda _b, a=action: a())
            buttons.add_widget(button)
        right.add_widget(buttons)
        self.root.add_widget(right)

    def retext(self) -> None:
        t = self.ctx.tx.t
        self.select.text = t("select")
        self.ok.text = t("ok")
        self.cancel.text = t("cancel")
        self.title.text = t("panel_b_title")

    def refresh(self) -> None:
        tx, v = self.ctx.tx, self.ctx.view
        st = self.ctx.cards.snapshot().get(self.slot)
        put(self.slot_title, text=tx.t("slot", n=self.slot))
        put(self.slot_card, markup=True, text=slot_text(tx, st))
        self.picker.update(self.ctx.cards.entries(), v.in_force if v else ())
        self.companies.refresh()

    def on_select(self) -> None:
        self.picker.select()
        self.companies.refresh()

    def on_cancel(self) -> None:
        self.picker.cancel()
        self.companies.refresh()

    def on_ok(self) -> None:
        e = self.picker.chosen()
        if e is None:
            return
        change = self.ctx.cards.catalogue_change(entry_key(e), source=f"card:{self.slot}")
        if change is not None:
            self.ctx.switch_to(change)
