"""The pages' words, Japanese first, English selectable (``?lang=en``, kept in a cookie)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..outage.model import Language
from ..outage.texts import REASON, label, when

TEXTS: dict[str, tuple[str, str]] = {
    # key: (Japanese, English)
    "site": ("停電情報", "Power outage information"),
    "other_lang": ("English", "日本語"),
    "lookup_title": ("現在の停電状況", "Power outages now"),
    "lookup_lead": ("都道府県を選ぶと、市区町村・地域ごとの停電戸数が見られます。",
                    "Choose a prefecture to see the homes without power by city and district."),
    "none_now": ("現在、停電は発生していません。", "There is no power outage now."),
    "none_in": ("{place}では、現在、停電は発生していません。", "There is no power outage in {place} now."),
    "col_prefecture": ("都道府県", "Prefecture"),
    "col_place": ("市区町村・地域", "City and district"),
    "col_outages": ("停電地域数", "Areas"),
    "col_homes": ("停電戸数", "Homes without power"),
    "col_since": ("停電日時", "Since"),
    "col_expected": ("復旧予定", "Expected back"),
    "col_reason": ("停電理由", "Cause"),
    "homes": ("{n:,}戸", "{n:,}"),
    "counting": ("確認中", "Being counted"),
    "areas": ("{n:,}地域", "{n:,}"),
    "updated": ("{at} 現在", "As of {at}"),
    "live": ("この表は自動で更新されます。", "This table updates by itself."),
    "back": ("都道府県の一覧へ", "All prefectures"),
    "in_place": ("{place}の停電状況", "Power outages in {place}"),
    "count_note": ("停電戸数は、その時点の戸数です。短時間で復旧した戸数は含まれません。",
                   "The number of homes is the number at this moment; homes whose power came back are not counted."),
    "privacy": ("このページにお客さまの個人情報は表示されません。", "This page shows no customer's personal data."),
}


@dataclass(frozen=True)
class Tx:
    lang: Language

    @property
    def code(self) -> str:
        return self.lang.value

    def t(self, key: str, **fmt: object) -> str:
        text = TEXTS[key][0 if self.lang is Language.JA else 1]
        return text.format(**fmt) if fmt else text

    def when(self, at: datetime | None) -> str:
        return when(at, self.lang)

    def reason(self, code: str) -> str:
        return label(REASON, code, self.lang)


def language_of(query: str | None, cookie: str | None) -> Language:
    for value in (query, cookie):
        if value in ("ja", "en"):
            return Language(value)
    return Language.JA
