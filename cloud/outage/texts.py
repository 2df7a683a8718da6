"""Operator-facing and customer-facing words, Japanese first, English selectable.

Response statuses (対応状況) and reasons (停電理由) travel as codes; an operator may also type free
text, which is shown as typed.
"""
from __future__ import annotations

from datetime import datetime

from appliance.clock import JST

from .model import Language

RESPONSE_STATUS = {
    "investigating": ("調査中", "Investigating"),
    "dispatched": ("出動中", "Crew dispatched"),
    "repairing": ("復旧作業中", "Repair in progress"),
    "restoring": ("順次復旧中", "Restoring"),
    "restored": ("復旧済み", "Restored"),
    "indoor": ("屋内", "Indoor"),
    "planned": ("工事停電", "Planned work"),
    "comm_fault": ("通信障害", "Communication fault"),
}

REASON = {
    "investigating": ("調査中", "Under investigation"),
    "home_breaker": ("宅内ブレーカが落ちています", "Your home breaker has tripped"),
    "equipment_failure": ("設備故障", "Equipment failure"),
    "weather": ("悪天候", "Bad weather"),
    "lightning": ("落雷", "Lightning"),
    "tree_contact": ("樹木接触", "Tree contact"),
    "construction": ("工事", "Construction work"),
    "comm_fault": ("集約装置の通信障害", "Concentrator communication fault"),
}

UNDECIDED = ("未定", "Not yet known")


def label(table: dict[str, tuple[str, str]], code: str, lang: Language) -> str:
    pair = table.get(code)
    if pair is None:
        return code  # the operator's own words
    return pair[0] if lang is Language.JA else pair[1]


def when(dt: datetime | None, lang: Language) -> str:
    """A date-time as people read it, always in JST."""
    if dt is None:
        return UNDECIDED[0] if lang is Language.JA else UNDECIDED[1]
    local = dt.astimezone(JST)
    if lang is Language.JA:
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local:%Y-%m-%d %H:%M} JST"
