"""Contracts: the companies in force (who receives which data, on which tariff menu, since when)
and the pending changes with their switch times."""
from __future__ import annotations

from ..i18n import stamp
from ..widgets import DIM, PANEL
from .base import UiContext
from .rows import Row, RowSpec, scrolling_list, sync_rows


class ContractsScreen:
    def __init__(self, ctx: UiContext) -> None:
        self.ctx = ctx
        self.root, self.list = scrolling_list(ctx.scale)
        self._rows: list[Row] = []
        self._specs: list[RowSpec] = []

    def specs(self) -> list[RowSpec]:
        v, tx = self.ctx.view, self.ctx.tx
        if v is None:
            return []
        t = tx.t
        specs = [header(t("in_force_title"))]
        for c in sorted(v.in_force, key=lambda c: c.role != "supply"):
            role = t("power_company" if c.role == "supply" else "data_company")
            menu = f"   {t('menu')}: {c.menu}" if c.menu else ""
            since = f"   {t('since')}: {stamp(c.since)}" if c.since else ""
            specs.append(RowSpec(f"[b]{role}: {c.company.name or c.company.code}[/b] ({c.company.code}){menu}\n"
                                 f"{t('receives')}: {tx.data_types(c.data_types)}{since}", 64))
        specs.append(header(t("pending")))
        if not v.pending:
            specs.append(RowSpec(t("pending_none"), 36, PANEL, DIM))
        for p in v.pending:
            role = t("power_company" if p.kind == "supply" else "data_company")
            menu = f": {p.menu}" if p.menu else ""
            specs.append(RowSpec(f"[b]{tx.switch(p.switch)}[/b]  {role}: {p.company.name or p.company.code} "
                                 f"({t('action_' + p.action.value)}{menu})\n"
                                 f"{t('receives')}: {tx.data_types(p.data_types)}", 64))
        return specs

    def refresh(self) -> None:
        specs = self.specs()
        if specs == self._specs:
            return  # nothing changed: no widget touched
        self._specs = specs
        sync_rows(self.list, self._rows, specs, self.ctx.scale)


def header(text: str) -> RowSpec:
    """A section heading: no panel, no padding."""
    return RowSpec(text, 26, None, DIM, 16, False)
