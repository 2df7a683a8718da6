"""Card panel (a), Fig. 9(a): one column per card slot, with the card's company, a card-select
button (lit while its contract is in force) and the switch date-time set on that slot."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from kivy.uix.boxlayout import BoxLayout

from appliance.clock import JST
from appliance.domain import SwitchTime

from ..model import is_in_force
from ..notices import Notice, confirm_key
from ..widgets import ACCENT, DIM, GREY, LIT, ON_LIT, PANEL, TEXT, Flat, Text, panel_background, put
from .base import UiContext, slot_text
from .confirm import ConfirmDialog
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
        self.confirm: ConfirmDialog | None = None  # the last "switch?" question asked
        self.slots: dict[str, SlotColumn] = {}
        self.root = BoxLayout(spacing=s(8), padding=s(2))
        for slot in ctx.settings.slots:
            col = BoxLayout(orientation="vertical", padding=s(8), spacing=s(6))
            panel_background(col, PANEL, s(8))
            c = SlotColumn(title=Text(font_size=s(16), color=DIM, size_hint_y=0.12),
                           card=Text(font_size=s(16), size_hint_y=0.24, valign="top"),
                           select=Flat(font_size=s(19), size_hint_y=0.26, bold=True),
                           when_label=Text(font_size=s(16), color=DIM, size_hint_y=0.08),
                           when=Text(font_size=s(18), size_hint_y=0.12, halign="center"),
                           set_time=Flat(font_size=s(17), size_hint_y=0.16, tone=GREY))
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
            switch = st.switch if st is not None and st.change_id in pending_ids else None
            put(c.when, text=tx.switch(switch) if switch else tx.when(None), color=TEXT if switch else GREY)
            c.when_set = switch is not None
            put(c.set_time, text=tx.t("datetime_set"))

    def select_card(self, slot: str) -> None:
        """Card select asks first ("…に切り換えますか？"); only yes switches."""
        change = self.ctx.cards.immediate_change(slot)
        if change is None:
            return
        question, yes = confirm_key(change.kind.value)
        t = self.ctx.tx.t
        self.confirm = ConfirmDialog(self.ctx, t(question, name=change.company.name or change.company.code), t(yes),
                                     on_yes=lambda: self.ctx.switch_to(change))
        self.confirm.open()

    def open_datetime(self, slot: str) -> None:
        st = self.ctx.cards.snapshot()[slot]
        if st.verified is None:
            return
        now = self.ctx.now().astimezone(JST).replace(second=0, microsecond=0)
        start = st.switch_at.astimezone(JST) if st.switch_at else now + timedelta(minutes=2)
        weekly = st.switch.weekly if st.switch is not None else ()
        self.datetime = DateTimePicker(self.ctx, slot, start, on_set=lambda when: self.schedule(slot, when),
                                       on_clear=lambda: self.unschedule(slot), weekly=weekly)
        self.datetime.open()

    def schedule(self, slot: str, when: SwitchTime) -> None:
        """Set on the date-time dialog: a one-off date-time or a weekly rule."""
        ctx = self.ctx
        change = ctx.cards.scheduled_change(slot, when)
        old = ctx.cards.snapshot()[slot].change_id
        if change is None:
            return

        def run():  # a new date-time replaces the one set before, once the core has taken it
            change_id = ctx.api.submit_change(change)
            if old is not None:
                ctx.api.cancel_change(old)
            return change_id

        def done(change_id):
            ctx.cards.note_scheduled(slot, when, change_id)
            ctx.notify(Notice("scheduled", {"name": change.company.name, "at": when}))
            ctx.request_view()

        ctx.worker.submit(run, then=done, fail=ctx.rejected)

    def unschedule(self, slot: str) -> None:
        ctx = self.ctx
        old = ctx.cards.snapshot()[slot].change_id
        if old is None:
            return

        def done(_):
            ctx.cards.note_scheduled(slot, None, None)
            ctx.notify(Notice("unscheduled"))
            ctx.request_view()
        ctx.worker.submit(ctx.api.cancel_change, old, then=done)
