"""The public site's outage lookup pages (see :mod:`.lookup` for what is counted)."""
from __future__ import annotations

import asyncio
import hashlib

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .lookup import by_prefecture, in_prefecture
from .site import Site


def routes(site: Site) -> list[Route]:
    async def home(request: Request) -> Response:
        rows = by_prefecture(await site.open_outages())
        fragment = "fragment" in request.query_params
        return site.page(request, "fragment_prefectures.html" if fragment else "lookup.html", rows=rows)

    async def prefecture(request: Request) -> Response:
        name = request.path_params["prefecture"][:16]
        rows = in_prefecture(await site.open_outages(), name)
        fragment = "fragment" in request.query_params
        return site.page(request, "fragment_places.html" if fragment else "prefecture.html", rows=rows,
                         prefecture=name)

    async def live(request: Request) -> Response:
        """``changed`` each time the public picture changes; a comment every 15 s keeps proxies open."""
        async def events():
            last, quiet = None, 0.0
            yield "retry: 5000\n\n"
            while not await request.is_disconnected():
                digest = fingerprint(by_prefecture(await site.open_outages()))
                if last is not None and digest != last:
                    yield "event: changed\ndata: {}\n\n"
                    quiet = 0.0
                last = digest
                await asyncio.sleep(site.live_poll_s)
                quiet += site.live_poll_s
                if quiet >= 15:
                    yield ": still here\n\n"
                    quiet = 0.0
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    return [Route("/", home), Route("/area/{prefecture}", prefecture), Route("/live", live)]


def fingerprint(rows: list) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()
