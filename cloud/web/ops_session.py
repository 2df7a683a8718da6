"""Who is signed in to the operations site: every ``/ops`` page asks :func:`signed_in` first and answers
:func:`to_login` to anyone who is not."""
from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .auth import COOKIE, Session
from .site import Site


def signed_in(site: Site, request: Request) -> Session | None:
    """The operator's session, or None."""
    return site.sessions.read(request.cookies.get(COOKIE), site.clock.now())


def to_login(request: Request) -> Response:
    """To the sign-in page, which comes back here (query included) after it."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ops/login?next={quote(here)}", status_code=303)
