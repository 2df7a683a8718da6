"""Server-sent events that say ``changed`` when a page's picture changes; ``static/live.js`` then
fetches the page's fragments again (any element with ``data-live``, from the stream named in its
``data-live-stream``, ``/live`` if none)."""
from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import StreamingResponse

KEEPALIVE_S = 15.0  # a comment this often keeps proxies from closing a quiet stream


def fingerprint(value: object) -> str:
    return hashlib.sha256(repr(value).encode()).hexdigest()


def change_stream(request: Request, picture: Callable[[], Awaitable[object]], poll_s: float) -> StreamingResponse:
    """``changed`` each time ``picture()`` reads differently (checked every ``poll_s``)."""
    async def events():
        last, quiet = None, 0.0
        yield "retry: 5000\n\n"
        while not await request.is_disconnected():
            digest = fingerprint(await picture())
            if last is not None and digest != last:
                yield "event: changed\ndata: {}\n\n"
                quiet = 0.0
            last = digest
            await asyncio.sleep(poll_s)
            quiet += poll_s
            if quiet >= KEEPALIVE_S:
                yield ": still here\n\n"
                quiet = 0.0
    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
