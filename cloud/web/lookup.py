"""The public outage lookup (the public homepage of JP6794864B2): per prefecture, then per city and
district, how many homes are without power. Only area and started planned outages are counted; a
single home's tripped breaker (an indoor outage) and a concentrator's silence are nobody else's
business, and nothing names a customer."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..outage.model import Outage, OutageKind, OutageStatus


@dataclass(frozen=True)
class PlaceCount:
    name: str  # a prefecture, a city or a district
    outages: int
    homes: int  # homes without power now
    since: datetime  # the earliest start among them
    expected: datetime | None  # the latest expected restoration, if every one has one
    reason: str  # the reason code (or operator's words) of the largest


def public_outages(outages: list[Outage]) -> list[Outage]:
    """Declared area outages (their homes may still be being counted) and planned ones under way."""
    return [o for o in outages if (o.kind is OutageKind.AREA and o.status in (OutageStatus.DECLARED, OutageStatus.RESTORING))
            or (o.kind is OutageKind.PLANNED and o.current_count > 0)]


def by_prefecture(outages: list[Outage]) -> list[PlaceCount]:
    return _group(public_outages(outages), lambda o: o.area.prefecture)


def in_prefecture(outages: list[Outage], prefecture: str) -> list[PlaceCount]:
    """Per city: a prefecture can hold thousands of districts in outage at once (a typhoon), too many to list."""
    return _group([o for o in public_outages(outages) if o.area.prefecture == prefecture], lambda o: o.area.city)


def in_city(outages: list[Outage], prefecture: str, city: str) -> list[PlaceCount]:
    """Per district of one city."""
    return _group([o for o in public_outages(outages) if o.area.prefecture == prefecture and o.area.city == city],
                  lambda o: o.area.district)


def _group(outages: list[Outage], key) -> list[PlaceCount]:
    groups: dict[str, list[Outage]] = {}
    for o in outages:
        groups.setdefault(key(o), []).append(o)
    out = []
    for name, members in groups.items():
        expected = [o.expected_restoration for o in members]
        largest = max(members, key=lambda o: o.current_count)
        out.append(PlaceCount(name, len(members), sum(o.current_count for o in members),
                              min(o.started_at for o in members),
                              max(expected) if all(e is not None for e in expected) else None, largest.reason))
    return sorted(out, key=lambda c: (-c.homes, c.name))
