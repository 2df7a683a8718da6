"""The operators' search (JP6794864B2 Fig. 8's 住所検索 and Fig. 10): customers by part of their address,
by customer number or by meter id, a page at a time, without reading a million registrations.

An address search is words, each of which must appear in the address (``広島 基町``, ``中区基町1丁目``).
When every word is in the name of some area (prefecture / city / district, :data:`schema_v6` keeps
each once in ``places``), the customers of those areas are the answer, read in (area, meter) order
from an index one page at a time. Otherwise a word names something below the district, the street a
customer gave on the public site, and only the registrations that have one are read.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from ..model import Registration
from .database import Database, chunks, statement
from .outages import OPEN_STATUSES
from .registrations import COLUMNS, _registration

MAX_WORDS = 5
WORD_LENGTH = 64
ID = re.compile(r"[A-Za-z0-9_-]{1,64}")

BY_ID = statement(
    f"SELECT {COLUMNS} FROM registrations WHERE meter_id IN :ids OR customer_number IN :ids ORDER BY meter_id "
    "LIMIT :limit OFFSET :offset", "ids")
# CROSS JOIN: SQLite then starts from the page's meters (outage_members_meter), not from every open
# outage by status, which took 190-330 ms for a page of 50 with 10,000 open outages; PostgreSQL reads
# it as the plain join it is
CURRENT = statement(
    "SELECT m.meter_id, o.id FROM outage_members m CROSS JOIN outages o WHERE o.id = m.outage_id "
    "AND m.meter_id IN :meter_ids AND m.restored_at IS NULL AND o.status IN :open", "meter_ids", "open")


def words(text: str) -> list[str]:
    """The words of a search box, split at any space (full-width too)."""
    return [w[:WORD_LENGTH] for w in text.split()][:MAX_WORDS]


def _like(word: str) -> str:
    return "%" + re.sub(r"([\\%_])", r"\\\1", word) + "%"


def _all_in(expression: str, n: int) -> str:
    return " AND ".join(f"{expression} LIKE :w{i} ESCAPE '\\'" for i in range(n))


class Search(Database):
    def find_registrations(self, text: str, limit: int, offset: int = 0) -> list[Registration]:
        """Customers matching ``text`` in (area, meter) order; ``limit`` rows from ``offset``."""
        found = words(text)
        if not found:
            return []
        page = {"limit": limit, "offset": offset}
        if len(found) == 1 and ID.fullmatch(found[0]):
            ids = sorted({found[0], found[0].upper()})
            rows = self._query(BY_ID, {"ids": ids, **page})
            if rows or offset:
                return [_registration(r) for r in rows]
        binds = {f"w{i}": _like(w) for i, w in enumerate(found)}
        places = _all_in("label", len(found))
        if self._scalar(f"SELECT 1 FROM places WHERE {places} LIMIT 1", binds):
            sql = (f"SELECT {COLUMNS} FROM registrations WHERE area IN (SELECT area FROM places WHERE {places}) "
                   "ORDER BY area, meter_id LIMIT :limit OFFSET :offset")
        else:
            # the partial index registrations_with_street walks only the customers who gave a street
            sql = (f"SELECT {COLUMNS} FROM registrations WHERE street <> '' AND "
                   f"{_all_in('(prefecture || city || district || street)', len(found))} "
                   "ORDER BY area, meter_id LIMIT :limit OFFSET :offset")
        return [_registration(r) for r in self._query(sql, {**binds, **page})]

    def current_outages_of(self, meter_ids: Sequence[str]) -> dict[str, list[int]]:
        """The open outages each of these meters is down in now (meters in none are left out)."""
        out: dict[str, list[int]] = {}
        for chunk in chunks(list(meter_ids)):
            for meter_id, outage_id in self._query(CURRENT, {"meter_ids": chunk, "open": OPEN_STATUSES}):
                out.setdefault(meter_id, []).append(int(outage_id))
        return out
