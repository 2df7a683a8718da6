"""``create_app``: the outage service's web site as one Starlette application.

Pages are rendered on the server (Jinja2, autoescaped); the one script, served from here, only keeps
a table fresh: it listens to ``/live`` (server-sent events) and refetches the table when the outage
picture changes. Every response forbids framing and foreign content (a strict Content-Security-Policy
with no inline script), so a page works the same with the network cut off from the internet.
"""
from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from appliance.clock import Clock

from ..outage.storage import Storage
from .i18n import Tx, language_of
from .lookup import by_prefecture, in_prefecture

HERE = Path(__file__).parent
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(storage: Storage, clock: Clock, *, live_poll_s: float = 2.0) -> Starlette:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(("html",)))

    def page(request: Request, template: str, **context) -> Response:
        tx = Tx(language_of(request.query_params.get("lang"), request.cookies.get("lang")))
        html = env.get_template(template).render(tx=tx, t=tx.t, now=clock.now(), path=request.url.path, **context)
        response = HTMLResponse(html)
        if request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie("lang", tx.code, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    async def outages():
        return await asyncio.to_thread(storage.outages, True)

    async def home(request: Request) -> Response:
        rows = by_prefecture(await outages())
        return page(request, "fragment_prefectures.html" if "fragment" in request.query_params else "lookup.html",
                    rows=rows)

    async def prefecture(request: Request) -> Response:
        name = request.path_params["prefecture"][:16]
        rows = in_prefecture(await outages(), name)
        return page(request, "fragment_places.html" if "fragment" in request.query_params else "prefecture.html",
                    rows=rows, prefecture=name)

    async def live(request: Request) -> Response:
        """``changed`` each time the public picture changes; a comment every 15 s keeps proxies open."""
        async def events():
            last, quiet = None, 0.0
            yield "retry: 5000\n\n"
            while not await request.is_disconnected():
                digest = fingerprint(by_prefecture(await outages()))
                if last is not None and digest != last:
                    yield "event: changed\ndata: {}\n\n"
                    quiet = 0.0
                last = digest
                await asyncio.sleep(live_poll_s)
                quiet += live_poll_s
                if quiet >= 15:
                    yield ": still here\n\n"
                    quiet = 0.0
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", home),
        Route("/area/{prefecture}", prefecture),
        Route("/live", live),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])


def fingerprint(rows: list) -> str:
    return hashlib.sha256(repr(rows).encode()).hexdigest()

