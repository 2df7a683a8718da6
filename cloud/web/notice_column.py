"""The notice column of the operators' lists (JP6794864B2 Fig. 8, お知らせ欄 31a): the latest happenings,
newest first: outages declared and restored, distribution automation's events as they arrive, and
planned outages about to begin (those first, soonest first). It keeps itself fresh like the public
tables: ``/ops/live`` says ``changed`` when the column would read differently, and the page's script
fetches ``/ops/notices`` again.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..outage.model import Outage, OutageKind, OutageStatus
from . import search_texts  # noqa: F401 (its words join the site's)
from .live import change_stream
from .ops_session import signed_in, to_login
from .site import Site

RECENT_HOURS = 6  # how far back the column looks
RECENT = timedelta(hours=RECENT_HOURS)
SOON = timedelta(hours=24)  # a planned outage starting within this is announced
SHOWN = 5
PLANNED_SHOWN = 2  # upcoming work never pushes every happening out of the column


@dataclass(frozen=True)
class Notice:
    at: datetime
    what: str  # declared | restored | da_outage | da_restored | planned_soon (the text key's tail)
    place: str
    homes: int = 0
    link: str = ""


def _place(o: Outage) -> str:
    return o.area.label(" ")


def gather(open_outages: list[Outage], restored: list[Outage], da_events, now: datetime) -> list[Notice]:
    """At most :data:`SHOWN` notices: planned outages starting soon first, then the rest newest first."""
    since = now - RECENT
    soon = sorted((o for o in open_outages if o.kind is OutageKind.PLANNED and o.status is OutageStatus.PLANNED
                   and now < o.started_at <= now + SOON), key=lambda o: o.started_at)
    planned = [Notice(o.started_at, "planned_soon", _place(o), link=f"/ops/outages/{o.id}") for o in soon[:PLANNED_SHOWN]]
    happened = [Notice(o.declared_at, "declared", _place(o), o.current_count, f"/ops/outages/{o.id}")
                for o in open_outages
                if o.kind in (OutageKind.AREA, OutageKind.INDOOR) and o.declared_at and o.declared_at >= since]
    happened += [Notice(o.restored_at, "restored", _place(o), link=f"/ops/outages/{o.id}")
                 for o in restored if o.kind is not OutageKind.COMM_FAULT]
    happened += [Notice(e.at, f"da_{e.kind}", e.area.label(" "), link="/ops/?" + urlencode({"area": e.area.label(""), "closed": "1"}))
                 for e in da_events if e.at >= since and e.kind in ("outage", "restored")]
    happened.sort(key=lambda n: n.at, reverse=True)
    return (planned + happened)[:SHOWN]


async def current(site: Site) -> list[Notice]:
    now = site.clock.now()
    restored = await asyncio.to_thread(site.storage.restored_since, now - RECENT, SHOWN)
    da_events = await asyncio.to_thread(site.storage.latest_da_events, SHOWN)
    return gather(await site.open_outages(), restored, da_events, now)


def routes(site: Site) -> list[Route]:
    async def notices(request: Request) -> Response:
        session = signed_in(site, request)
        if session is None:
            return to_login(request)
        return site.page(request, "fragment_notices.html", notices=await current(site), hours=RECENT_HOURS)

    async def live(request: Request) -> Response:
        """The operators' own stream: ``changed`` whenever the notice column would read differently."""
        if signed_in(site, request) is None:
            return Response(status_code=403)
        return change_stream(request, lambda: current(site), site.live_poll_s)

    return [Route("/ops/notices", notices), Route("/ops/live", live)]
