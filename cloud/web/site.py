"""What every page module shares: the store, the clock, and the page renderer (templates, language,
security headers). A page module exposes ``routes(site: Site) -> list[Route]``; ``create_app``
mounts them all."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from appliance.clock import Clock

from ..accounts import Accounts
from ..outage.api_auth import Gate
from ..outage.manager import OutageManager
from ..outage.model import Outage
from ..outage.storage import Storage
from ..outage.texts import REASON, RESPONSE_STATUS
from ..switch_desk import SwitchDesk
from .auth import Sessions
from .i18n import Tx, language_of
from .mailer import Mailer

HERE = Path(__file__).parent
OUTAGES_FRESH_S = 1.0  # how stale a list or map may be; the live streams poll every live_poll_s
OUTAGES_WAIT_S = 0.05  # how long a page waits for a newer read before it takes the last one
OUTAGES_STALE_S = 5.0  # a copy older than this is never shown: the page waits for the read


@dataclass
class Site:
    storage: Storage
    clock: Clock
    manager: OutageManager  # operators' inputs go through it, as through the API
    key: bytes  # the handlers' key (cloud.secrets): signs sessions and links
    accounts: Accounts
    live_poll_s: float = 2.0
    mailer: Mailer | None = None  # the public site's own e-mail (registration confirmations)
    desks: dict[str, SwitchDesk] = field(default_factory=dict)  # companies taking remote switches, by code
    env: Environment = field(init=False)
    sessions: Sessions = field(init=False)
    gate: Gate = field(init=False)

    _outages: tuple[float, list[Outage]] | None = field(init=False, default=None)
    _reading: asyncio.Future | None = field(init=False, default=None)
    _outage_rows: dict[tuple, Outage] = field(init=False, default_factory=dict)  # the last read, by row

    def __post_init__(self) -> None:
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(("html",)))
        self.env.globals.update(RESPONSE_STATUS=RESPONSE_STATUS, REASON=REASON)
        self.sessions = Sessions(self.key)
        self.gate = Gate(self.accounts)

    def tx(self, request: Request) -> Tx:
        return Tx(language_of(request.query_params.get("lang"), request.cookies.get("lang")))

    def page(self, request: Request, template: str, status: int = 200, **context) -> Response:
        """``template`` rendered in the request's language; a ``?lang=`` choice is kept in a cookie."""
        tx = self.tx(request)
        html = self.env.get_template(template).render(tx=tx, t=tx.t, now=self.clock.now(), path=request.url.path,
                                                      request=request, **context)
        response = HTMLResponse(html, status_code=status)
        if request.query_params.get("lang") in ("ja", "en"):
            response.set_cookie("lang", tx.code, max_age=365 * 86400, samesite="lax", httponly=True)
        return response

    async def open_outages(self) -> list[Outage]:
        """The open outages, read from the store at most once every ``OUTAGES_FRESH_S`` however many
        pages and live streams ask. 10,000 of them take 50-200 ms to read here: a page waits
        ``OUTAGES_WAIT_S`` for a newer read, then takes the last one (at most a second or so old) while
        the read goes on; only a copy older than ``OUTAGES_STALE_S`` (a quiet site) is waited for."""
        if self._outages is not None and time.monotonic() - self._outages[0] < OUTAGES_FRESH_S:
            return self._outages[1]
        if self._reading is None:
            self._reading = asyncio.ensure_future(self._read_outages())
        if self._outages is None or time.monotonic() - self._outages[0] >= OUTAGES_STALE_S:
            await asyncio.shield(self._reading)
        else:
            await asyncio.wait([self._reading], timeout=OUTAGES_WAIT_S)
        return self._outages[1]

    async def _read_outages(self) -> None:
        started = time.monotonic()
        try:
            outages, self._outage_rows = await asyncio.to_thread(self.storage.open_outages_reusing, self._outage_rows)
            self._outages = (started, outages)
        finally:
            self._reading = None
