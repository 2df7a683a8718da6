"""The operators' address search and its result screen (JP6794864B2 Figs. 8 and 10), sign-in only:

- ``/ops/search``: customers by part of their address, customer number or meter id (住所検索 31m), a
  page at a time, each with whether they have power now;
- ``/ops/by-address``: the open outages counted by prefecture, city and district (住所別停電一覧 31f);
- ``/ops/customers/{meter_id}``: one customer (Fig. 10): the distribution system they hang on (35h), the
  outages that reach them with their date-time and homes (35i) and a way to the outage's own page,
  where the expected restoration is entered, and every e-mail they were sent (35j).

Personal data (name, street, e-mail) is shown to signed-in staff only, as every page here; the e-mail
address is partly masked. A viewer sees the same pages: nothing here changes anything.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..outage.model import Outage, OutageKind, OutageStatus, Registration
from . import search_texts  # noqa: F401 (its words join the site's)
from .ops import PAGE_SIZE
from .ops_session import signed_in, to_login
from .site import Site

MAX_QUERY = 200
MAX_OUTAGES_SHOWN = 20
LEVELS = ("prefecture", "city", "district")
DOWN = (OutageStatus.DECLARED, OutageStatus.RESTORING)


@dataclass(frozen=True)
class Found:
    """One customer in the results, with the open outages that reach them."""

    registration: Registration
    outages: list[Outage]

    @property
    def state(self) -> str:
        """``out`` (no power now), ``planned`` (a planned outage announced), or ``ok``."""
        if any(o.status in DOWN or (o.kind is OutageKind.PLANNED and o.current_count) for o in self.outages):
            return "out"
        return "planned" if self.outages else "ok"


@dataclass(frozen=True)
class PlaceRow:
    """One line of the list by address."""

    name: str
    query: dict[str, str]  # the level below: ?prefecture=..&city=..
    area_filter: str  # the outage list's area filter for this place
    outages: int
    homes: int
    since: datetime


def reaching(registration: Registration, open_in_area: list[Outage], member_of: set[int]) -> list[Outage]:
    """The open outages that reach this customer: those they are counted in (an indoor one, one the
    meters found), and the area-wide and planned ones of their area (distribution automation's word
    covers the area before a meter is counted). A concentrator's silence is no outage of theirs."""
    return [o for o in open_in_area
            if o.id in member_of or (o.kind in (OutageKind.AREA, OutageKind.PLANNED) and o.area == registration.area)]


def mask_email(email: str | None) -> str:
    """``taro@example.jp`` as ``ta***@example.jp``: enough to confirm with the caller, not to copy."""
    if not email or "@" not in email:
        return ""
    local, domain = email.rsplit("@", 1)
    return f"{local[:2]}***@{domain}"


def by_place(outages: list[Outage], prefecture: str, city: str) -> list[PlaceRow]:
    """Open outages (not a concentrator's silence) grouped one level below the place chosen."""
    level = 2 if city else 1 if prefecture else 0
    groups: dict[tuple[str, ...], list[Outage]] = {}
    for o in outages:
        parts = (o.area.prefecture, o.area.city, o.area.district)
        if o.kind is OutageKind.COMM_FAULT or (prefecture and parts[0] != prefecture) or (city and parts[1] != city):
            continue
        groups.setdefault(parts[:level + 1], []).append(o)
    rows = []
    for parts, members in groups.items():
        query = dict(zip(LEVELS, parts)) if level < 2 else {}
        rows.append(PlaceRow(parts[-1], query, "".join(parts), len(members), sum(o.current_count for o in members),
                             min(o.started_at for o in members)))
    return sorted(rows, key=lambda r: (-r.homes, -r.outages, r.name))


def routes(site: Site) -> list[Route]:
    async def open_by_area() -> dict[str, list[Outage]]:
        found: dict[str, list[Outage]] = {}
        for o in await site.open_outages():
            found.setdefault(o.area.key, []).append(o)
        return found

    async def search(request: Request) -> Response:
        session = signed_in(site, request)
        if session is None:
            return to_login(request)
        q = request.query_params.get("q", "").strip()[:MAX_QUERY]
        page = max(0, _int(request.query_params.get("page", "0")))
        rows: list[Found] = []
        more = False
        if q:
            regs = await asyncio.to_thread(site.storage.find_registrations, q, PAGE_SIZE + 1, page * PAGE_SIZE)
            more, regs = len(regs) > PAGE_SIZE, regs[:PAGE_SIZE]
            members = await asyncio.to_thread(site.storage.current_outages_of, [r.meter_id for r in regs])
            in_area = await open_by_area()
            rows = [Found(r, reaching(r, in_area.get(r.area.key, []), set(members.get(r.meter_id, ())))) for r in regs]
        link = lambda p: "?" + urlencode({"q": q, "page": p})
        return site.page(request, "ops_search.html", session=session, q=q, rows=rows, page=page, more=more,
                         first=page * PAGE_SIZE + 1, link=link)

    async def by_address(request: Request) -> Response:
        session = signed_in(site, request)
        if session is None:
            return to_login(request)
        prefecture = request.query_params.get("prefecture", "")[:64]
        city = request.query_params.get("city", "")[:64] if prefecture else ""
        rows = by_place(await site.open_outages(), prefecture, city)
        level = LEVELS[2 if city else 1 if prefecture else 0]
        return site.page(request, "ops_by_address.html", session=session, rows=rows, prefecture=prefecture,
                         city=city, level=level, urlencode=urlencode)

    async def customer(request: Request) -> Response:
        session = signed_in(site, request)
        if session is None:
            return to_login(request)
        meter_id = request.path_params["meter_id"][:64]
        reg = await asyncio.to_thread(site.storage.registration, meter_id)
        if reg is None:
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        history = await asyncio.to_thread(site.storage.outages_of_meter, meter_id)
        members = {o.id for o, m in history if m.restored_at is None}
        now = reaching(reg, (await open_by_area()).get(reg.area.key, []), members)
        outages = {o.id: o for o in now}
        for o, _ in history:
            outages.setdefault(o.id, o)
        shown = sorted(outages.values(), key=lambda o: o.started_at, reverse=True)[:MAX_OUTAGES_SHOWN]
        sent = await asyncio.to_thread(site.storage.notifications_of, meter_id)
        return site.page(request, "ops_customer.html", session=session, r=reg, outages=shown,
                         current={o.id for o in now}, sent=sent, masked=mask_email(reg.email),
                         pending=mask_email(reg.pending_email))

    return [
        Route("/ops/search", search),
        Route("/ops/by-address", by_address),
        Route("/ops/customers/{meter_id}", customer),
    ]


def _int(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 9 else 0
