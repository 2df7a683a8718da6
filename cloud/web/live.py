"""Server-sent events that say ``changed`` whenever a page's picture of the outages changes, so the
page's live part (``static/live.js``) fetches itself again: no polling from the browser, no reload."""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ..outage.model import Outage
from .site import Site

KEEP_ALIVE_S = 15  # a comment this often keeps proxies from closing a quiet stream


def changes(request: Request, site: Site, picture: Callable[[list[Outage]], object]) -> StreamingResponse:
    """``picture(open outages)`` is what the page shows; an event goes out when it differs from the
    last poll's (every ``site.live_poll_s``)."""
    async def events():
        last, quiet = None, 0.0
        yield "retry: 5000\n\n"
        while not await request.is_disconnected():
            digest = fingerprint(picture(await site.open_outages()))
            if last is not None and digest != last:
                yield "event: changed\ndata: {}\n\n"
                quiet = 0.0
            last = digest
            await asyncio.sleep(site.live_poll_s)
            quiet += site.live_poll_s
            if quiet >= KEEP_ALIVE_S:
                yield ": still here\n\n"
                quiet = 0.0
    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


def fingerprint(picture: object) -> str:
    return hashlib.sha256(repr(picture).encode()).hexdigest()
