"""The operations site (JP6794864B2 Fig. 8 and the sales terminal 23), sign-in only: the accident and
planned outage lists (filtered, sorted, paged), one outage with the operator's form (response status,
expected restoration, reason), and the audit log of every input.

A ``viewer`` sees everything and changes nothing; only an ``operator`` may post a form, and every form
carries the session's CSRF token.
"""
from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from appliance.clock import JST

from ..outage.model import Outage, OutageKind, OutageStatus
from ..outage.texts import REASON, RESPONSE_STATUS
from .auth import COOKIE, LIFETIME, Session
from .site import Site

PAGE_SIZE = 50
LISTS = {"accident": (OutageKind.AREA, OutageKind.INDOOR), "planned": (OutageKind.PLANNED,)}
SORTS = {
    "started": lambda o: o.started_at,
    "area": lambda o: o.area.key,
    "homes": lambda o: o.current_count,
    "status": lambda o: o.status.value,
    "expected": lambda o: (o.expected_restoration is None, o.expected_restoration or o.started_at),
}


def signed_in(site: Site, request: Request) -> Session | None:
    """The operator or viewer signed in on this request; every ``/ops`` page but the sign-in asks."""
    return site.sessions.read(request.cookies.get(COOKIE), site.clock.now())


def to_login(request: Request) -> Response:
    """To the sign-in page, which comes back here (query included) after it."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ops/login?next={quote(here)}", status_code=303)


def routes(site: Site) -> list[Route]:
    session_of = partial(signed_in, site)

    async def login_form(request: Request) -> Response:
        return site.page(request, "ops_login.html", error=None, next=_safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await request.form()
        name, password = str(form.get("name", ""))[:64], str(form.get("password", ""))[:1024]
        nxt = _safe_next(str(form.get("next", "")))
        client = request.client.host if request.client else "?"
        verdict = await asyncio.to_thread(site.gate.login, name, password, client)
        if verdict.account is None:
            error = "login_limited" if verdict.limited else "login_failed"
            await asyncio.to_thread(site.storage.audit, site.clock.now(), name or "-", "login_failed", f"address:{client}",
                                    {"limited": verdict.limited})
            return site.page(request, "ops_login.html", status=429 if verdict.limited else 401, error=error, next=nxt)
        _, cookie = site.sessions.issue(verdict.account.name, verdict.account.role, site.clock.now())
        response = RedirectResponse(nxt, status_code=303)
        response.set_cookie(COOKIE, cookie, max_age=int(LIFETIME.total_seconds()), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/ops")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/ops/login", status_code=303)
        response.delete_cookie(COOKIE, path="/ops")
        return response

    async def outage_list(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        which = request.path_params.get("which", "accident")
        if which not in LISTS:
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        query = ListQuery.of(request)
        everything = await asyncio.to_thread(site.storage.outages) if query.closed else await site.open_outages()
        rows = query.apply([o for o in everything if o.kind in LISTS[which]])
        page = rows[query.offset:query.offset + PAGE_SIZE]
        return site.page(request, "ops_list.html", session=session, which=which, rows=page, total=len(rows),
                         query=query, statuses=[s.value for s in OutageStatus], page_size=PAGE_SIZE)

    async def outage_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        outage = await asyncio.to_thread(site.storage.outage, _int(request.path_params["id"]))
        if outage is None:
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        return site.page(request, "ops_outage.html", session=session, o=outage, csrf=site.sessions.csrf(session),
                         statuses=RESPONSE_STATUS, reasons=REASON, saved="saved" in request.query_params, errors={})

    async def outage_update(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        form = await request.form()
        if not site.sessions.csrf_ok(session, form.get("csrf")):
            return site.page(request, "ops_message.html", status=403, session=session, message="csrf")
        if not session.may_write:
            return site.page(request, "ops_message.html", status=403, session=session, message="viewer")
        outage_id = _int(request.path_params["id"])
        outage = await asyncio.to_thread(site.storage.outage, outage_id)
        if outage is None:
            return site.page(request, "ops_message.html", status=404, session=session, message="not_found")
        status, reason = str(form.get("response_status", "")), str(form.get("reason", ""))
        errors = {}
        if status not in RESPONSE_STATUS:
            errors["response_status"] = "choose_one"
        if reason not in REASON:
            errors["reason"] = "choose_one"
        expected, clear = None, False
        text = str(form.get("expected_restoration", "")).strip()
        if text:
            try:
                expected = datetime.fromisoformat(text).replace(tzinfo=JST)  # the form's local time is JST
            except ValueError:
                errors["expected_restoration"] = "bad_time"
            else:
                if expected < outage.started_at:
                    errors["expected_restoration"] = "before_start"
        else:
            clear = True
        if errors:
            return site.page(request, "ops_outage.html", status=400, session=session, o=outage,
                             csrf=site.sessions.csrf(session), statuses=RESPONSE_STATUS, reasons=REASON, saved=False,
                             errors=errors)
        await asyncio.to_thread(site.manager.operator_update, outage_id, response_status=status, reason=reason,
                                expected_restoration=expected, clear_expected=clear)
        await asyncio.to_thread(site.storage.audit, site.clock.now(), session.name, "outage_update", f"outage:{outage_id}",
                                {"response_status": status, "reason": reason,
                                 "expected_restoration": expected.isoformat() if expected else None})
        return RedirectResponse(f"/ops/outages/{outage_id}?saved=1", status_code=303)

    async def audit_page(request: Request) -> Response:
        session = session_of(request)
        if session is None:
            return to_login(request)
        page = max(0, _int(request.query_params.get("page", "0")))
        entries = await asyncio.to_thread(site.storage.audit_entries, PAGE_SIZE, page * PAGE_SIZE)
        total = await asyncio.to_thread(site.storage.audit_count)
        return site.page(request, "ops_audit.html", session=session, entries=entries, page=page, total=total,
                         page_size=PAGE_SIZE)

    return [
        Route("/ops/login", login_form, methods=["GET"]),
        Route("/ops/login", login, methods=["POST"]),
        Route("/ops/logout", logout, methods=["POST"]),
        Route("/ops/", outage_list),
        Route("/ops/list/{which}", outage_list),
        Route("/ops/outages/{id}", outage_page, methods=["GET"]),
        Route("/ops/outages/{id}", outage_update, methods=["POST"]),
        Route("/ops/audit", audit_page),
    ]


class ListQuery:
    """The list's filters, sort and page, from the query string (anything unknown is ignored)."""

    def __init__(self, since: datetime | None, until: datetime | None, area: str, status: str, sort: str,
                 descending: bool, page: int, closed: bool) -> None:
        self.since, self.until, self.area, self.status = since, until, area, status
        self.sort, self.descending, self.page, self.closed = sort, descending, page, closed

    @classmethod
    def of(cls, request: Request) -> ListQuery:
        q = request.query_params
        sort = q.get("sort", "started")
        return cls(_local_time(q.get("since")), _local_time(q.get("until")), q.get("area", "")[:64],
                   q.get("status", "") if q.get("status", "") in {s.value for s in OutageStatus} else "",
                   sort if sort in SORTS else "started", q.get("order", "desc") != "asc",
                   max(0, _int(q.get("page", "0"))), q.get("closed") == "1")

    @property
    def offset(self) -> int:
        return self.page * PAGE_SIZE

    def apply(self, outages: list[Outage]) -> list[Outage]:
        rows = [o for o in outages
                if (self.since is None or o.started_at >= self.since) and (self.until is None or o.started_at <= self.until)
                and (not self.area or self.area in o.area.label(""))
                and (not self.status or o.status.value == self.status)]
        return sorted(rows, key=SORTS[self.sort], reverse=self.descending)

    def link(self, **change) -> str:
        """This query with some parameters changed, as a query string."""
        values = {"since": self.since.strftime("%Y-%m-%dT%H:%M") if self.since else "",
                  "until": self.until.strftime("%Y-%m-%dT%H:%M") if self.until else "", "area": self.area,
                  "status": self.status, "sort": self.sort, "order": "desc" if self.descending else "asc",
                  "page": str(self.page), "closed": "1" if self.closed else ""}
        values.update({k: str(v) for k, v in change.items()})
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None)})


def _local_time(text: str | None) -> datetime | None:
    """A form's ``datetime-local`` value, read as JST."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text[:16]).replace(tzinfo=JST)
    except ValueError:
        return None


def _int(text: str) -> int:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else -1


def _safe_next(path: str | None) -> str:
    """Only a path of this site's operations pages: never another site (an open redirect)."""
    return path if path and path.startswith("/ops/") and not path.startswith("//") and "\\" not in path else "/ops/"
