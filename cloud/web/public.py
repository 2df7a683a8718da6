"""The public site's outage lookup pages (see :mod:`.lookup` for what is counted)."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .live import change_stream
from .lookup import by_prefecture, in_city, in_prefecture
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
                         prefecture=name, place=name, base=f"/area/{quote(name)}", city=None)

    async def city(request: Request) -> Response:
        pref, name = request.path_params["prefecture"][:16], request.path_params["city"][:32]
        rows = in_city(await site.open_outages(), pref, name)
        fragment = "fragment" in request.query_params
        return site.page(request, "fragment_places.html" if fragment else "prefecture.html", rows=rows,
                         prefecture=pref, place=f"{pref} {name}", base=f"/area/{quote(pref)}/{quote(name)}", city=name)

    async def live(request: Request) -> Response:
        """``changed`` each time the public picture changes."""
        async def picture():
            return by_prefecture(await site.open_outages())
        return change_stream(request, picture, site.live_poll_s)

    return [Route("/", home), Route("/area/{prefecture}", prefecture), Route("/area/{prefecture}/{city}", city),
            Route("/live", live)]
