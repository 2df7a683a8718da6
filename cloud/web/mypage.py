"""The customer's page: the customer terminal of JP5159864B2 embodiment 3.

The customer signs in with their registration (meter id and customer number; the link is e-mailed
to the confirmed address, or comes from the registration's management link), sees the meter's
contracts in force and the changes waiting, as the meter itself last reported them
(``meters/{id}/contracts``), and any security error the meter raised (embodiment 4). To switch:

1. the customer chooses the company (and tariff menu) and when: at once, at a date-time, or on
   weekly days at a time; the request goes to that company's switching desk (:mod:`cloud.switch_desk`);
2. the desk answers with its confirmation message, shown as is;
3. the customer presses Apply (nothing is sent before);
4. the desk signs the contract change and sends it to the meter over MQTT;
5. the meter stores it; the page shows it waiting, then in force, as the meter reports it (live).

Pages carry the link's token (no session), are ``no-store``, and every post is same-origin.
"""
from __future__ import annotations

import asyncio
import logging
import re
import smtplib
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from appliance.clock import JST
from appliance.datatypes import NAMES as DATA_TYPE_NAMES
from appliance.domain import SwitchTime, WeeklySlot
from appliance.trust.document import switch_to_wire

from ..outage.model import Event, Registration
from ..switch_desk import DeskRefusal, SwitchDesk, SwitchRequest
from . import i18n
from .live import change_stream
from .mailer import link_subject
from .mypage_texts import DAY_NAMES, TEXTS
from .public_forms import FormTokens, RateLimit, client_of, same_origin
from .site import Site

i18n.TEXTS.update(TEXTS)
log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}  # the site-wide Referrer-Policy same-origin keeps the token in-house
CODE = re.compile(r"[A-Za-z0-9_-]{1,64}")
TIME = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
DAY_VALUES = frozenset("0123456")  # a weekday's form value, Monday 0; anything else is ignored


@dataclass(frozen=True)
class Plan:
    """One choice in the company list: a desk's company on one of its tariff menus."""

    desk: SwitchDesk
    menu: str | None

    @property
    def value(self) -> str:
        return f"{self.desk.company.code}|{self.menu or ''}"


def plans(desks: dict[str, SwitchDesk]) -> list[Plan]:
    return [Plan(d, m) for d in desks.values() for m in (d.company.menus or (None,))]


@dataclass(frozen=True)
class SwitchForm:
    plan: str = ""
    when: str = ""
    at: str = ""
    days: tuple[int, ...] = ()
    time: str = ""

    @classmethod
    def of(cls, form) -> SwitchForm:
        days = tuple(sorted({int(d) for d in form.getlist("days") if str(d) in DAY_VALUES}))
        return cls(str(form.get("plan", ""))[:100], str(form.get("when", ""))[:10], str(form.get("at", ""))[:20],
                   days, str(form.get("time", ""))[:5])

    def request(self, meter_id: str, choices: list[Plan], t) -> tuple[SwitchRequest | None, dict[str, str]]:
        """The request this form asks for, or the errors, by field, in the page's language."""
        errors: dict[str, str] = {}
        plan = next((p for p in choices if p.value == self.plan), None)
        if plan is None:
            errors["plan"] = t("my_err_plan")
        switch = None
        if self.when == "immediate":
            switch = SwitchTime(immediate=True)
        elif self.when == "at":
            try:
                switch = SwitchTime(at=datetime.strptime(self.at.replace(" ", "T"), "%Y-%m-%dT%H:%M").replace(tzinfo=JST))
            except ValueError:
                errors["at"] = t("my_err_at")
        elif self.when == "weekly":
            if not self.days:
                errors["days"] = t("my_err_days")
            if not TIME.fullmatch(self.time):
                errors["time"] = t("my_err_time")
            if not errors.keys() & {"days", "time"}:
                switch = SwitchTime(weekly=tuple(WeeklySlot(d, self.time) for d in self.days))
        else:
            errors["when"] = t("my_err_when")
        if errors or plan is None or switch is None:
            return None, errors
        return SwitchRequest(meter_id, plan.desk.company.code, switch, plan.menu), {}


def describe_switch(switch, tx) -> str:
    """A switch time as published (``immediate``, ISO, ``{"weekly": [...]}``) or asked for, for people."""
    if isinstance(switch, SwitchTime):
        switch = switch_to_wire(switch)
    if switch == "immediate":
        return tx.t("my_immediate")
    if isinstance(switch, dict):
        col = 0 if tx.code == "ja" else 1
        names = {pair[1].lower(): pair[col] for pair in DAY_NAMES}
        slots = ", ".join(f"{names.get(s['day'], s['day'])} {s['at']}" for s in switch.get("weekly", []))
        return tx.t("my_weekly", slots=slots)
    return tx.when(datetime.fromisoformat(switch))


def data_names(types: list[str], tx) -> str:
    col, sep = (0, "、") if tx.code == "ja" else (1, ", ")
    return sep.join(DATA_TYPE_NAMES.get(x, (x, x))[col] for x in types)


def routes(site: Site) -> list[Route]:
    tokens = FormTokens(site.key, "mypage")
    limit = RateLimit()

    def linked(params) -> Registration | None:
        """The registration a sign-in link (or the management link) names, while its address is the confirmed one."""
        meter_id = str(params.get("m", ""))[:64]
        record = site.storage.registration(meter_id) if CODE.fullmatch(meter_id) else None
        if record is None or not record.email or site.mailer is None:
            return None
        now, subject = site.clock.now(), link_subject(meter_id, record.email)
        for signer in (site.mailer.mypage_links, site.mailer.manage_links):
            if signer.verify(subject, params.get("x"), str(params.get("t", "")), now):
                return record
        return None

    def link_of(params) -> dict[str, str]:
        return {k: str(params.get(k, "")) for k in ("m", "x", "t")}

    def render(request: Request, template: str, status: int = 200, **context) -> Response:
        link = context.get("link") or {}
        response = site.page(request, template, status=status, lang_base=f"{request.url.path}?{urlencode(link)}&",
                             describe_switch=describe_switch, data_names=data_names, from_iso=datetime.fromisoformat,
                             **context)
        response.headers.update(NO_STORE)
        return response

    def bad_link(request: Request) -> Response:
        return render(request, "register_message.html", status=400, title="link_bad_title", text="my_link_bad",
                      again_href="/mypage/signin", again_text="my_signin_again")

    async def state_of(record: Registration):
        state = await asyncio.to_thread(site.storage.contract_state, record.meter_id)
        notices = await asyncio.to_thread(site.storage.notifications_of, record.meter_id)
        security = [n for n in notices if n.event is Event.SECURITY_ERROR]
        return state, security

    async def page(request: Request, record: Registration, link: dict[str, str], form: SwitchForm | None = None,
                   errors: dict[str, str] | None = None, status: int = 200, notice: str | None = None,
                   sent: str | None = None) -> Response:
        state, security = await state_of(record)
        template = "fragment_mypage.html" if "fragment" in request.query_params else "mypage.html"
        return render(request, template, status=status, record=record, link=link, state=state, security=security,
                      plans=plans(site.desks), form=form or SwitchForm(when="immediate"), errors=errors or {},
                      notice=notice, sent=sent, days=DAY_NAMES,
                      live_url=f"/mypage?{urlencode(link)}&fragment=1", live_source=f"/mypage/live?{urlencode(link)}")

    # -- sign-in ------------------------------------------------------------------------------------
    async def signin_form(request: Request) -> Response:
        return render(request, "mypage_signin.html", token=tokens.issue(site.clock.now()), errors={}, form={})

    async def signin(request: Request) -> Response:
        data = await request.form()
        now = site.clock.now()
        form = {k: str(data.get(k, "")).strip()[:64] for k in ("meter_id", "customer_number")}
        if not same_origin(request) or not tokens.valid(data.get("token"), now):
            return render(request, "mypage_signin.html", status=400, token=tokens.issue(now), errors={}, form=form,
                          notice="err_form_expired")
        if not limit.allow(client_of(request), now):
            return render(request, "mypage_signin.html", status=429, token=tokens.issue(now), errors={}, form=form,
                          notice="err_rate")
        t = site.tx(request).t
        errors = {k: t("err_required") for k, v in form.items() if not v}
        if errors:
            return render(request, "mypage_signin.html", status=400, token=tokens.issue(now), errors=errors, form=form,
                          notice="errors_above")
        record = await asyncio.to_thread(site.storage.registration, form["meter_id"]) \
            if CODE.fullmatch(form["meter_id"]) else None
        if (record is not None and record.customer_number == form["customer_number"] and record.email
                and site.mailer is not None):
            msg = site.mailer.mypage(record.meter_id, record.email, record.name, record.language, now)
            try:
                await asyncio.to_thread(site.mailer.send, msg)
            except (smtplib.SMTPException, OSError) as exc:
                log.warning("customer page link for %s not sent: %s", record.meter_id, exc)
        # the same answer whether or not the numbers matched: a stranger learns nothing
        return render(request, "register_message.html", title="my_signin_sent_title", text="my_signin_sent")

    # -- the page -------------------------------------------------------------------------------------
    async def mypage(request: Request) -> Response:
        record = await asyncio.to_thread(linked, request.query_params)
        if record is None:
            return bad_link(request)
        sent = request.query_params.get("sent")
        sent_name = site.desks[sent].company.name if sent in site.desks else None
        return await page(request, record, link_of(request.query_params), sent=sent_name)

    async def live(request: Request) -> Response:
        """``changed`` when the meter reports new contracts or a new notice arrives."""
        record = await asyncio.to_thread(linked, request.query_params)
        if record is None:
            return Response(status_code=403)

        async def picture():
            state, security = await state_of(record)
            return state.version if state else None, len(security)
        return change_stream(request, picture, site.live_poll_s)

    # -- steps 1-4 ------------------------------------------------------------------------------------
    async def switch(request: Request) -> Response:
        data = await request.form()
        record = await asyncio.to_thread(linked, data)
        if record is None or not same_origin(request):
            return bad_link(request)
        link, t = link_of(data), site.tx(request).t
        form = SwitchForm.of(data)
        if data.get("action") == "accept":
            return await accept(request, record, link, str(data.get("offer", ""))[:4096], str(data.get("company", "")))
        switch_request, errors = form.request(record.meter_id, plans(site.desks), t)
        if switch_request is None:
            return await page(request, record, link, form, errors, status=400, notice="errors_above")
        desk = site.desks[switch_request.company]
        try:
            offer = desk.offer(switch_request)  # step 2: the company's confirmation message
        except DeskRefusal as refusal:
            return await page(request, record, link, form, {refusal.field if refusal.field in ("plan", "at") else
                                                            ("at" if form.when == "at" else "when"): t(refusal.reason)},
                              status=400, notice="errors_above")
        return render(request, "mypage_confirm.html", record=record, link=link, offer=offer, form=form,
                      expires=offer.expires_at)

    async def accept(request: Request, record: Registration, link: dict[str, str], token: str, code: str) -> Response:
        desk = site.desks.get(code)
        try:
            if desk is None:
                raise DeskRefusal("offer", "desk_bad_offer")
            offer = desk.read_offer(token)
            if offer.request.meter_id != record.meter_id:
                raise DeskRefusal("offer", "desk_bad_offer")
            serial = await asyncio.to_thread(desk.accept, token)  # step 4: signed, sent to the meter
        except DeskRefusal as refusal:
            return await page(request, record, link, status=400, notice=refusal.reason)
        except (ConnectionError, OSError) as exc:
            log.warning("remote switch for %s not sent: %s", record.meter_id, exc)
            return await page(request, record, link, status=503, notice="desk_unreachable")
        await asyncio.to_thread(site.storage.audit, site.clock.now(), f"customer:{record.meter_id}", "remote_switch",
                                f"meter:{record.meter_id}", {"company": code, "serial": serial,
                                                             **offer.request.to_json()})
        return RedirectResponse(f"/mypage?{urlencode({**link, 'sent': code})}", status_code=303)

    return [
        Route("/mypage/signin", signin_form, methods=["GET"]),
        Route("/mypage/signin", signin, methods=["POST"]),
        Route("/mypage", mypage, methods=["GET"]),
        Route("/mypage/live", live, methods=["GET"]),
        Route("/mypage/switch", switch, methods=["POST"]),
    ]
