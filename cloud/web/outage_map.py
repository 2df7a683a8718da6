"""The outage distribution maps of the operations site (JP6794864B2 Fig. 9): the accident map (area
outages and home breaker trips) and the construction (planned) outage map, each area shaded by its
homes without power in five steps, with its count, a key, a table of the same counts, and a way
into the list of that area's outages.

The whole-territory map draws the prefectures; a prefecture opens a schematic of its cities and
districts. The map part refetches itself (``static/live.js``) when ``/ops/map/live`` says the open
outages changed, so an outage declared or restored shows up without a reload. Sign-in only; a viewer
sees it as an operator does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..outage.model import Outage, OutageKind
from ..outage.topology import PREFECTURES
from . import i18n, map_shapes
from .live import change_stream
from .map_texts import TEXTS
from .ops_session import signed_in, to_login
from .site import Site

assert not TEXTS.keys() & i18n.TEXTS.keys(), "map texts must not replace the site's"
i18n.TEXTS.update(TEXTS)

MAPS = {  # which map: the outage kinds it shows, and the list its areas open
    "accident": ((OutageKind.AREA, OutageKind.INDOOR), "/ops/"),
    "planned": ((OutageKind.PLANNED,), "/ops/list/planned"),
}
STEPS = (1, 10, 50, 200, 1000)  # the lowest count of each of the five shades, in homes
MAX_CELLS = 12  # districts drawn per city; the rest share one "and N more" cell


@dataclass(frozen=True)
class Tally:
    """One place on the map: its outages and homes, and the list's filter for it."""
    name: str
    area: str  # the outage list's area filter (prefecture, city, district run together, as it matches)
    outages: int
    homes: int
    more: int = 0  # this cell stands for that many districts not drawn one by one

    @property
    def shade(self) -> str:
        """The CSS class: ``shade-0``..``shade-4`` by homes, ``shade-counting`` while an outage's homes
        are still being counted, ``shade-none`` without any outage."""
        if not self.outages:
            return "shade-none"
        if not self.homes:
            return "shade-counting"
        return f"shade-{sum(self.homes >= lo for lo in STEPS) - 1}"


@dataclass(frozen=True)
class Region:
    """A prefecture on the whole-territory map."""
    outline: map_shapes.Outline
    tally: Tally | None  # None: outside the territory and no outage there (drawn for orientation only)


@dataclass(frozen=True)
class City:
    tile: map_shapes.Tile
    tally: Tally
    districts: list[tuple[map_shapes.Cell, Tally]]


def homes(o: Outage, now: datetime) -> int:
    """Homes without power now; for planned work not yet begun, the homes it will cut off."""
    if o.kind is OutageKind.PLANNED and o.started_at > now:
        return o.peak_count
    return o.current_count


def tally(name: str, area: str, outages: list[Outage], now: datetime) -> Tally:
    return Tally(name, area, len(outages), sum(homes(o, now) for o in outages))


def group(outages: list[Outage], key) -> dict[str, list[Outage]]:
    groups: dict[str, list[Outage]] = {}
    for o in outages:
        groups.setdefault(key(o), []).append(o)
    return groups


def territory(outages: list[Outage], now: datetime) -> tuple[map_shapes.Frame, list[Region], list[Tally]]:
    """The prefectures of the territory and wherever an outage is, framed; every prefecture is drawn
    (the frame crops the far ones) so the neighbours give the shape of the coast."""
    by_pref = group(outages, lambda o: o.area.prefecture)
    shown = set(PREFECTURES) | set(by_pref)
    tallies = {p: tally(p, p, by_pref.get(p, []), now) for p in shown}
    regions = [Region(outline, tallies.get(name)) for name, outline in map_shapes.outlines().items()]
    rows = sorted((t for t in tallies.values() if t.outages), key=lambda t: (-t.homes, t.name))
    return map_shapes.frame(shown), regions, rows


def prefecture(outages: list[Outage], pref: str, now: datetime) -> tuple[map_shapes.Schematic, list[City]]:
    """The schematic of one prefecture: its cities (the territory's, then any other with an outage),
    each with its districts that have outages, most homes first."""
    mine = [o for o in outages if o.area.prefecture == pref]
    by_city = group(mine, lambda o: o.area.city)
    names = list(PREFECTURES.get(pref, ())) + sorted(set(by_city) - set(PREFECTURES.get(pref, ())))
    cities = []
    for city in names:
        districts = sorted((tally(d, pref + city + d, os, now) for d, os in
                            group(by_city.get(city, []), lambda o: o.area.district).items()),
                           key=lambda t: (-t.homes, t.name))
        if len(districts) > MAX_CELLS:  # the rest in one cell, which opens the city's list
            rest = districts[MAX_CELLS - 1:]
            districts = districts[:MAX_CELLS - 1] + [Tally(city, pref + city, sum(t.outages for t in rest),
                                                           sum(t.homes for t in rest), more=len(rest))]
        cities.append((tally(city, pref + city, by_city.get(city, []), now), districts))
    drawing = map_shapes.schematic([(c.name, [d.name for d in ds]) for c, ds in cities])
    return drawing, [City(tile, c, list(zip(tile.cells, ds))) for tile, (c, ds) in zip(drawing.tiles, cities)]


def legend(tx: i18n.Tx) -> list[tuple[str, str]]:
    """(CSS class, words) for the five steps, then "being counted" and "no outage"."""
    steps = [(f"shade-{i}", tx.t("map_range", lo=lo, hi=STEPS[i + 1] - 1) if i + 1 < len(STEPS)
              else tx.t("map_range_top", lo=lo)) for i, lo in enumerate(STEPS)]
    return steps + [("shade-counting", tx.t("map_counting")), ("shade-none", tx.t("map_none"))]


def routes(site: Site) -> list[Route]:
    def outages_of(which: str, everything: list[Outage]) -> list[Outage]:
        return [o for o in everything if o.kind in MAPS[which][0]]

    async def outage_map(request: Request) -> Response:
        session = signed_in(site, request)
        if session is None:
            return to_login(request)
        which = request.path_params.get("which", "accident")
        if which not in MAPS:
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        pref = request.query_params.get("pref", "")[:16]
        if pref and pref not in map_shapes.outlines():
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        now, tx = site.clock.now(), site.tx(request)
        outages = outages_of(which, await site.open_outages())
        base = "/ops/map" + ("" if which == "accident" else f"/{which}")
        here = f"{base}?{urlencode({'pref': pref})}" if pref else base
        title = tx.t("map_in", place=pref, map=tx.t(f"map_{which}")) if pref else tx.t(f"map_{which}")
        mine = [o for o in outages if not pref or o.area.prefecture == pref]
        context = {"session": session, "which": which, "pref": pref, "base": base, "here": here, "title": title,
                   "list_base": MAPS[which][1], "legend": legend(tx), "total": tally("", "", mine, now),
                   "fragment_url": f"{base}?{urlencode({'pref': pref, 'fragment': '1'} if pref else {'fragment': '1'})}",
                   "lang_base": f"{here}&" if pref else f"{base}?"}
        if pref:
            context["schematic"], context["cities"] = prefecture(outages, pref, now)
        else:
            context["frame"], context["regions"], context["rows"] = territory(outages, now)
        template = "ops_map_fragment.html" if request.query_params.get("fragment") else "ops_map.html"
        return site.page(request, template, **context)

    async def live(request: Request) -> Response:
        if signed_in(site, request) is None:
            return Response(status_code=401)

        async def picture():
            return sorted((o.id, o.kind.value, o.status.value, o.current_count, o.peak_count)
                          for o in await site.open_outages())
        return change_stream(request, picture, site.live_poll_s)

    return [Route("/ops/map", outage_map), Route("/ops/map/live", live), Route("/ops/map/{which}", outage_map)]
