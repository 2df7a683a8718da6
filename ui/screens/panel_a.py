"""Card panel (a), Fig. 9(a): one column per card slot, with the card's company, a card-select
button (lit while its contract is in force) and the switch date-time set on that slot."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kivy.uix.boxlayout import BoxLayout

from appliance.clock import JST

from ..model import is_in_force
from ..widgets import ACCENT, DIM, GREY, LIT, ON_LIT, PANEL, TEXT, Flat, Text, panel_background, put
from .base import UiContext, slot_text
from .datetime_picker import DateTimePicker


@dataclass
class SlotColumn:
    title: Text
    card: Text
    select: Flat
    when_label: Text
    when: Text
    set_time: Flat
    lit: bool = False  # the card's contract is in force
    when_set: bool = False  # a switch date-time is set (unset shows grey, invalid)


class PanelA:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        s = ctx.s
        self.datetime: DateTimePicker | None = None  # the date-time popup last opened
        self.slots: dict[str, SlotColumn] = {}
        self.root = BoxLayout(spacing=s(8), padding=s(2))
        for slot in ctx.settings.slots:
            col = BoxLayout(orientation="vertical", padding=s(8), spacing=s(6))
            panel_background(col, PANEL, s(8))
            c = SlotColumn(title=Text(font_size=s(15), color=DIM, size_hint_y=0.12),
                           card=Text(font_size=s(16), size_hint_y=0.24, valign="top"),
                           select=Flat(font_size=s(19), size_hint_y=0.26, bold=True),
                           when_label=Text(font_size=s(13), color=DIM, size_hint_y=0.08),
                           when=Text(font_size=s(18), size_hint_y=0.12, halign="center"),
                           set_time=Flat(font_size=s(15), size_hint_y=0.16, tone=GREY))
            c.select.bind(on_release=lambda _b, sl=slot: self.select_card(sl))
            c.set_time.bind(on_release=lambda _b, sl=slot: self.open_datetime(sl))
            for w in (c.title, c.card, c.select, c.when_label, c.when, c.set_time):
                col.add_widget(w)
            self.slots[slot] = c
            self.root.add_widget(col)

    def retext(self) -> None:
        """Every text here follows the slots' state: :meth:`refresh` sets them."""

    def refresh(self) -> None:
        tx, v = self.ctx.tx, self.ctx.view
        snap = self.ctx.cards.snapshot()
        in_force = v.in_force if v else ()
        pending_ids = {p.id for p in (v.pending if v else ())}
        for slot, c in self.slots.items():
            st = snap.get(slot)
            put(c.title, text=tx.t("slot", n=slot))
            put(c.card, markup=True, text=slot_text(tx, st))
            c.lit = st is not None and is_in_force(st.company, in_force)
            put(c.select, text=tx.t("card_select") + ("\n" + tx.t("in_force") if c.lit else ""),
                tone=LIT if c.lit else (ACCENT if st is not None and st.verified else GREY),
                color=ON_LIT if c.lit else TEXT)
            put(c.when_label, text=tx.t("switch_at"))
            at = st.switch_at if st is not None and st.change_id in pending_ids else None
            put(c.when, text=tx.when(at), color=TEXT if at else GREY)
            c.when_set = at is not None
            put(c.set_time, text=tx.t("datetime_set"))

    def select_card(self, slot: str) -> None:
        change = self.ctx.cards.immediate_change(slot)
        if change is not None:
            self.ctx.switch_to(change)

    def open_datetime(self, slot: str) -> None:
        st = self.ctx.cards.snapshot()[slot]
        if st.verified is None:
            return
        now = self.ctx.now().astimezone(JST).replace(second=0, microsecond=0)
        start = st.switch_at.astimezone(JST) if st.switch_at else now + timedelta(minutes=2)
        self.datetime = DateTimePicker(self.ctx, slot, start, on_set=lambda at: self.schedule(slot, at),
                                       on_clear=lambda: self.unschedule(slot))
        self.datetime.open()

    def schedule(self, slot: str, at: datetime) -> None:
        ctx = self.ctx
        change = ctx.cards.scheduled_change(slot, at)
        old = ctx.cards.snapshot()[slot].change_id
        if change is None:
            return

        def run():  # a new date-time replaces the one set before
            if old is not None:
                ctx.api.cancel_change(old)
            return ctx.api.submit_change(change)

        def done(change_id):
            ctx.cards.note_scheduled(slot, at, change_id)
            ctx.flash(ctx.tx.t("scheduled", name=change.company.name, at=ctx.tx.when(at)))
            ctx.request_view()

        ctx.worker.submit(run, then=done, fail=ctx.rejected)

    def unschedule(self, slot: str) -> None:
        ctx = self.ctx
        old = ctx.cards.snapshot()[slot].change_id
        if old is None:
            return

        def done(_):
            ctx.cards.note_scheduled(slot, None, None)
            ctx.flash(ctx.tx.t("unscheduled"))
            ctx.request_view()
        ctx.worker.submit(ctx.api.cancel_change, old, then=done)
