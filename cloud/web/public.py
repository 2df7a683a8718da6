"""The public site's outage lookup pages (see :mod:`.lookup` for what is counted)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .live import changes
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
        """``changed`` each time the public picture (the counts per prefecture) changes."""
        return changes(request, site, by_prefecture)

    return [Route("/", home), Route("/area/{prefecture}", prefecture), Route("/live", live)]
