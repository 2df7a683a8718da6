"""Alerts: a lost cloud connection (with the readings queued), the meter's alerts (a security error,
a refused card, a breaker fault; each dismissed with its button), and the card problems seen."""
from __future__ import annotations

from dataclasses import dataclass

from kivy.uix.boxlayout import BoxLayout

from ..i18n import stamp
from ..model import breaker_is_open, link_problem_text
from ..notices import alert_key, refusal_key
from ..widgets import DIM, GREY, PANEL, TEXT, Flat, put
from .base import UiContext
from .rows import Row, RowSpec, scrolling_list

ALERT_TONE = (0.35, 0.16, 0.15, 1)
CARD_TONE = (0.33, 0.25, 0.10, 1)
ALERT_TITLES = {"breaker_remote": "alert_breaker_remote"}  # alert kinds with a title of their own


@dataclass(frozen=True)
class AlertRow:
    """One alert as shown; ``alert_id``: the meter's alert, which a button dismisses."""

    kind: str  # link | alert | card | none
    text: str
    alert_id: int | None = None


class AlertLine(BoxLayout):
    """An alert's row, and beside it the dismiss button while it shows one of the meter's alerts."""

    def __init__(self, spec: RowSpec, scale: float, dismiss) -> None:
        super().__init__(size_hint_y=None, spacing=scale * 6)
        self.alert_id: int | None = None
        self.row = Row(spec, scale)
        self.row.size_hint_y = 1
        self.add_widget(self.row)
        self.dismiss_button = Flat(size_hint_x=None, width=scale * 96, font_size=scale * 16, tone=GREY)
        self.dismiss_button.bind(on_release=lambda _b: dismiss(self.alert_id))


class AlertsScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        self.root, self.list = scrolling_list(ctx.scale)
        self.lines: list[AlertLine] = []
        self.has_alerts = False  # something to tell: the nav tab turns red
        self._shown: list[AlertRow] | None = None

    def rows(self) -> list[AlertRow]:
        """Every alert shown: the link, the meter's alerts, the card problems."""
        tx, v = self.ctx.tx, self.ctx.view
        t = tx.t
        out: list[AlertRow] = []
        if v is not None and v.link is not None and not v.link.connected:
            why = link_problem_text(v.link.problem)
            lines = [f"[b]{t('alert_link')}[/b]"] + ([t(why)] if why else []) + [t("alert_link_queued", n=v.queued)]
            out.append(AlertRow("link", "\n".join(lines)))
        for a in (v.alerts if v else ()):
            key = alert_key(a.kind, a.code, a.purpose, a.action)
            msg = t(key, c=a.company_code or "") if key else (a.message_ja if tx.lang == "ja" else None) or a.message
            # an alert that recorded no breaker state shows the present one
            brk_open = a.breaker_open
            if brk_open is None and v.breaker is not None:
                brk_open = breaker_is_open(v.breaker)
            lines = [f"[b]{_title(a.kind, t)}[/b]  {stamp(a.at)}"]
            if a.company_code:
                lines.append(t("alert_company", c=a.company_code))
            lines.append(t("alert_failed", m=msg))
            if brk_open is not None:
                lines.append(t("alert_breaker", state=t("breaker_open" if brk_open else "breaker_closed")))
            out.append(AlertRow("alert", "\n".join(lines), a.id))
        for note in reversed(self.ctx.cards.problems[-5:]):
            out.append(AlertRow("card", f"[b]{t('alert_card')}[/b]  {t('slot', n=note.slot)}  {stamp(note.at)}\n"
                                        f"{t(refusal_key(note.problem.get('code')))}"))
        return out

    def refresh(self) -> None:
        rows = self.rows()
        self.has_alerts = bool(rows)
        shown = rows or [AlertRow("none", self.ctx.tx.t("alerts_none"))]
        if shown == self._shown:
            return  # nothing changed: no widget touched
        self._shown = shown
        for i, row in enumerate(shown):
            spec = _spec(row)
            if i == len(self.lines):
                self.lines.append(AlertLine(spec, self.ctx.scale, self._dismiss))
            line = self.lines[i]
            line.row.show(spec)
            line.row.fit()
            line.alert_id = row.alert_id
            if row.alert_id is not None:
                put(line.dismiss_button, text=self.ctx.tx.t("clear"))
                if line.dismiss_button.parent is None:
                    line.add_widget(line.dismiss_button, index=0)
            elif line.dismiss_button.parent is not None:
                line.remove_widget(line.dismiss_button)
            if line.parent is None:
                self.list.add_widget(line)
        for line in self.lines[len(shown):]:
            if line.parent is not None:
                self.list.remove_widget(line)

    def _dismiss(self, alert_id: int | None) -> None:
        if alert_id is not None:
            self.ctx.worker.submit(self.ctx.api.clear_alert, alert_id, then=lambda _r: self.ctx.request_view())


def _spec(row: AlertRow) -> RowSpec:
    if row.kind == "none":
        return RowSpec(row.text, 40, PANEL, DIM)
    return RowSpec(row.text, 30 + 22 * row.text.count("\n"), CARD_TONE if row.kind == "card" else ALERT_TONE, TEXT)


def _title(kind: str, t) -> str:
    if kind in ALERT_TITLES:
        return t(ALERT_TITLES[kind])
    return t("alert_security") if "security" in kind else kind
