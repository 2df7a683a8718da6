"""``create_app``: the outage service's web site as one Starlette application.

Pages are rendered on the server (Jinja2, autoescaped); the one script, served from here, only keeps
a table fresh: it listens to ``/live`` (server-sent events) and refetches the table when the outage
picture changes. Every response forbids framing and foreign content (a strict Content-Security-Policy
with no inline script), so a page works the same with the network cut off from the internet.

Each page module (:mod:`.public`, ...) gives its routes from the shared :class:`.site.Site`.
"""
from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from appliance.clock import Clock

from ..accounts import Accounts
from ..outage.manager import OutageManager
from ..outage.storage import Storage
from ..switch_desk import SwitchDesk
from . import mypage, notice_column, ops, outage_map, public, register, search
from .mailer import Mailer
from .site import HERE, Site

HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}
PAGE_MODULES = (public, ops, outage_map, register, search, notice_column, mypage)


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def create_app(storage: Storage, clock: Clock, *, key: bytes, accounts: Accounts,
               manager: OutageManager | None = None, live_poll_s: float = 2.0, mailer: Mailer | None = None,
               desks: Sequence[SwitchDesk] = ()) -> Starlette:
    """``key``: the handlers' key (signs sessions and links); ``accounts``: the operators' (as for the API);
    ``mailer``: the SMTP server for the public site's confirmation e-mails (without it nobody can register);
    ``desks``: the companies' switching desks the customer's page offers (embodiment 3)."""
    site = Site(storage, clock, manager or OutageManager(storage, clock), key, accounts, live_poll_s, mailer,
                {d.company.code: d for d in desks})
    routes = [r for module in PAGE_MODULES for r in module.routes(site)]
    routes.append(Mount("/static", StaticFiles(directory=HERE / "static"), name="static"))
    # compressed: a prefecture with thousands of places in outage is a long table (event streams stay plain)
    return Starlette(routes=routes, middleware=[Middleware(GZipMiddleware, minimum_size=1024, compresslevel=6),
                                                Middleware(SecurityHeaders)])
