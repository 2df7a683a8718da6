"""Customer registration on the public site (JP6794864B2 Fig. 2 and Fig. 13, steps S105-S135).

* ``/register``: meter id (SMID), customer number, name, e-mail, and the address with the postal code
  first: prefecture / city / district are derived from it on the server (``/postal/{code}`` and
  ``static/postal.js`` fill them in as one types; without script, "find address" posts the form and it
  comes back completed), the street is typed. The meter must be in the utility's records with that
  customer number, one neutral message otherwise, so a stranger cannot learn which meters exist; the
  derived address must lie in the meter's area.
* Double opt-in: the address waits in ``pending_email`` and a confirmation e-mail goes out at once with
  a signed, expiring link (purpose ``confirm``) and a management link (purpose ``manage``). Only the
  click makes it the address outage e-mail goes to. The confirmation is a button on the linked page, not
  the link itself, so a mail scanner that opens links confirms nothing.
* The registration is in the store the outage manager reads (S135): its next tick sees it, and the
  confirmation page says so if the customer's area is without power right now.
* The management link shows the registration and lets the customer change name, street and e-mail (a
  new address is confirmed again), unsubscribe or resubscribe, and delete it (the personal data goes).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import re
import smtplib
import unicodedata
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..outage.model import Area, Outage, OutageKind, OutageStatus, Registration
from . import i18n, postal
from .mailer import link_subject
from .public_forms import FormTokens, RateLimit, client_of, same_origin
from .register_texts import TEXTS
from .site import Site

log = logging.getLogger(__name__)

assert not TEXTS.keys() & i18n.TEXTS.keys(), "registration texts must not replace the site's"
i18n.TEXTS.update(TEXTS)

CODE = re.compile(r"[A-Z0-9-]{1,32}")  # meter ids and customer numbers
EMAIL = re.compile(r"[^@\s\"<>,;]{1,64}@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
MAX_LEN = {"name": 100, "street": 200, "email": 254}
NO_STORE = {"Cache-Control": "no-store"}  # pages with personal data or live links


@dataclass(frozen=True)
class RegistrationForm:
    meter_id: str = ""
    customer_number: str = ""
    name: str = ""
    email: str = ""
    postal_code: str = ""
    district: str = ""
    street: str = ""

    @classmethod
    def of(cls, form) -> RegistrationForm:
        def text(name: str, limit: int = 300) -> str:
            return " ".join(str(form.get(name, ""))[:limit].split())

        def code(name: str) -> str:  # full-width digits and letters as typed on a phone become ASCII
            return unicodedata.normalize("NFKC", text(name, 64)).upper().replace(" ", "")

        return cls(code("meter_id"), code("customer_number"), text("name"), text("email").strip(),
                   text("postal_code", 16), text("district", 100), text("street"))

    @property
    def address(self) -> postal.PostalAddress | None:
        code = postal.normalize(self.postal_code)
        return postal.lookup(code) if code else None


def contact_errors(form: RegistrationForm, t) -> dict[str, str]:
    """Name, e-mail and street: what both the registration and the management page check."""
    errors: dict[str, str] = {}
    for name in ("name", "email", "street"):
        value = getattr(form, name)
        if not value:
            errors[name] = t("err_required")
        elif len(value) > MAX_LEN[name]:
            errors[name] = t("err_too_long", n=MAX_LEN[name])
    if "email" not in errors and not EMAIL.fullmatch(form.email):
        errors["email"] = t("err_email")
    return errors


def registration_errors(form: RegistrationForm, record: Registration | None, t) -> dict[str, str]:
    """Every field's problem, in the page's language; ``record`` is the utility's record of the meter."""
    errors = contact_errors(form, t)
    for name, problem in (("meter_id", "err_meter_format"), ("customer_number", "err_customer_format")):
        value = getattr(form, name)
        if not value:
            errors[name] = t("err_required")
        elif not CODE.fullmatch(value):
            errors[name] = t(problem)
    matches = record is not None and hmac.compare_digest(record.customer_number.encode(), form.customer_number.encode())
    if not errors.keys() & {"meter_id", "customer_number"} and not matches:
        # the same words whether the meter is unknown or the number wrong: a stranger learns nothing
        errors["meter_id"] = errors["customer_number"] = t("err_no_match")
    address = form.address
    if not form.postal_code:
        errors["postal_code"] = t("err_required")
    elif postal.normalize(form.postal_code) is None:
        errors["postal_code"] = t("err_postal_format")
    elif address is None:
        errors["postal_code"] = t("err_postal_unknown")
    elif address.districts and form.district not in address.districts and (form.district or len(address.districts) > 1):
        errors["district"] = t("err_district")  # a code's sole district is the customer's even if not yet shown
    elif matches and not address.agrees_with(record.area):
        errors["postal_code"] = t("err_postal_area")
    return errors


def area_outage(outages: list[Outage], area: Area, now) -> Outage | None:
    """The outage the customer's area is in right now, if any (declared, or planned work under way)."""
    for o in outages:
        if o.area != area:
            continue
        if o.kind is OutageKind.AREA and o.status in (OutageStatus.DECLARED, OutageStatus.RESTORING):
            return o
        if o.kind is OutageKind.PLANNED and o.status is OutageStatus.PLANNED and o.started_at <= now:
            return o
    return None


def routes(site: Site) -> list[Route]:
    tokens = FormTokens(site.key, "register")
    limit = RateLimit()

    def form_page(request: Request, form: RegistrationForm, errors: dict[str, str], status: int = 200,
                  notice: str | None = None) -> Response:
        return site.page(request, "register.html", status=status, form=form, errors=errors, address=form.address,
                         token=tokens.issue(site.clock.now()), notice=notice)

    def message(request: Request, title: str, text: str, status: int = 200, **context) -> Response:
        response = site.page(request, "register_message.html", status=status, title=title, text=text, **context)
        response.headers.update(NO_STORE)
        return response

    async def send_confirmation(meter_id: str, email: str, name: str, language) -> bool:
        if site.mailer is None:
            log.error("registration for %s: no SMTP server configured, no confirmation e-mail sent", meter_id)
            return False
        msg = site.mailer.confirmation(meter_id, email, name, language, site.clock.now())
        try:
            await asyncio.to_thread(site.mailer.send, msg)
        except (smtplib.SMTPException, OSError) as exc:
            log.warning("confirmation e-mail for %s not sent: %s", meter_id, exc)
            return False
        return True

    async def register_form(request: Request) -> Response:
        return form_page(request, RegistrationForm(), {})

    async def register(request: Request) -> Response:
        if not same_origin(request):
            return message(request, "link_bad_title", "err_form_expired", status=403)
        form_data = await request.form()
        form = RegistrationForm.of(form_data)
        t, now = site.tx(request).t, site.clock.now()
        if not limit.allow(client_of(request), now):
            return form_page(request, form, {}, status=429, notice="err_rate")
        if not tokens.valid(form_data.get("token"), now):
            return form_page(request, form, {}, status=400, notice="err_form_expired")
        if form_data.get("action") == "lookup":  # no script: the postal code completes the address
            errors = registration_errors(form, None, t)
            errors = {k: v for k, v in errors.items() if k == "postal_code"}
            return form_page(request, form, errors, status=400 if errors else 200, notice=None if errors else "reg_found")
        record = await asyncio.to_thread(site.storage.registration, form.meter_id) if CODE.fullmatch(form.meter_id) else None
        errors = registration_errors(form, record, t)
        if errors:
            return form_page(request, form, errors, status=400, notice="errors_above")
        language = site.tx(request).lang
        await asyncio.to_thread(site.storage.request_email, record.meter_id, form.email, form.name, form.street,
                                form.address.code, language)
        if not await send_confirmation(record.meter_id, form.email, form.name, language):
            return form_page(request, form, {}, status=503, notice="err_mail")
        return message(request, "reg_sent_title", "reg_sent", email=form.email, note="reg_sent_note")

    async def postal_json(request: Request) -> Response:
        code = postal.normalize(request.path_params["code"])
        found = postal.lookup(code) if code else None
        if found is None:
            return JSONResponse({"error": "unknown postal code"}, status_code=404)
        return JSONResponse(found.as_json(), headers={"Cache-Control": "public, max-age=86400"})

    async def linked(request: Request, params, purpose: str) -> tuple[Registration | None, bool]:
        """The registration a signed link names, and whether its address is still waiting: a
        confirmation link is good for the waiting address (or says that address is already confirmed);
        a management link, for the confirmed one."""
        meter_id = str(params.get("m", ""))[:64]
        record = await asyncio.to_thread(site.storage.registration, meter_id) if meter_id else None
        if record is None or site.mailer is None:
            return None, False
        signer = site.mailer.confirm_links if purpose == "confirm" else site.mailer.manage_links
        now = site.clock.now()
        for email, waiting in ((record.pending_email, True), (record.email, False)):
            if waiting and purpose != "confirm":
                continue
            if email and signer.verify(link_subject(meter_id, email), params.get("x"), str(params.get("t", "")), now):
                return record, waiting
        return None, False

    def link_fields(params) -> dict[str, str]:
        return {k: str(params.get(k, "")) for k in ("m", "x", "t")}

    def lang_base(request: Request) -> str:
        """The page's own link (with its token), for the language switch."""
        return f"{request.url.path}?{urlencode(link_fields(request.query_params))}&"

    async def confirm_page(request: Request) -> Response:
        record, waiting = await linked(request, request.query_params, "confirm")
        if record is None:
            return message(request, "link_bad_title", "link_bad", status=400, again=True)
        response = site.page(request, "register_confirm.html", record=record, waiting=waiting, confirmed=False,
                             link=link_fields(request.query_params), lang_base=lang_base(request), outage=None)
        response.headers.update(NO_STORE)
        return response

    async def confirm(request: Request) -> Response:
        form = await request.form()
        record, waiting = await linked(request, form, "confirm")
        if record is None or not same_origin(request):
            return message(request, "link_bad_title", "link_bad", status=400, again=True)
        if waiting:
            await asyncio.to_thread(site.storage.confirm_email, record.meter_id, record.pending_email, site.clock.now())
            record = replace(record, email=record.pending_email, pending_email=None, unsubscribed=False)
        outage = area_outage(await site.open_outages(), record.area, site.clock.now())
        response = site.page(request, "register_confirm.html", record=record, waiting=False, confirmed=True,
                             link={}, outage=outage)
        response.headers.update(NO_STORE)
        return response

    async def manage_page(request: Request) -> Response:
        record, _ = await linked(request, request.query_params, "manage")
        if record is None:
            return message(request, "link_bad_title", "link_bad", status=400, again=True)
        return manage_view(request, record, link_fields(request.query_params), {}, None,
                           done=request.query_params.get("done"))

    def manage_view(request: Request, record: Registration, link: dict[str, str], errors: dict[str, str],
                    form: RegistrationForm | None, status: int = 200, done: str | None = None) -> Response:
        form = form or RegistrationForm(name=record.name, email=record.email or "", street=record.street)
        response = site.page(request, "register_manage.html", status=status, record=record, link=link, errors=errors,
                             form=form, done=done if done in DONE else None, lang_base=lang_base(request))
        response.headers.update(NO_STORE)
        return response

    async def manage(request: Request) -> Response:
        data = await request.form()
        record, _ = await linked(request, data, "manage")
        if record is None or not same_origin(request):
            return message(request, "link_bad_title", "link_bad", status=400, again=True)
        link, action, meter_id = link_fields(data), data.get("action"), record.meter_id
        t = site.tx(request).t
        if action == "delete":
            if data.get("confirm_delete") != "yes":
                return manage_view(request, record, link, {"confirm_delete": t("err_delete_confirm")}, None, status=400)
            await asyncio.to_thread(site.storage.forget_registration, meter_id)
            return message(request, "deleted_title", "deleted")
        if action in ("unsubscribe", "resubscribe"):
            await asyncio.to_thread(site.storage.set_unsubscribed, meter_id, action == "unsubscribe")
            done = action + "d"
        else:
            form = RegistrationForm.of(data)
            errors = contact_errors(form, t)
            if errors:
                return manage_view(request, record, link, errors, form, status=400)
            await asyncio.to_thread(site.storage.set_contact, meter_id, form.name, form.street)
            done = "saved"
            if form.email.lower() != (record.email or "").lower():
                await asyncio.to_thread(site.storage.request_email, meter_id, form.email, form.name, form.street,
                                        record.postal_code, record.language)
                if not await send_confirmation(meter_id, form.email, form.name, record.language):
                    return manage_view(request, record, link, {"email": t("err_mail")}, form, status=503)
                done = "pending"
        return RedirectResponse(f"/register/manage?{urlencode({**link, 'done': done})}", status_code=303)

    return [
        Route("/register", register_form, methods=["GET"]),
        Route("/register", register, methods=["POST"]),
        Route("/postal/{code}", postal_json, methods=["GET"]),
        Route("/register/confirm", confirm_page, methods=["GET"]),
        Route("/register/confirm", confirm, methods=["POST"]),
        Route("/register/manage", manage_page, methods=["GET"]),
        Route("/register/manage", manage, methods=["POST"]),
    ]


DONE = ("saved", "pending", "unsubscribed", "resubscribed")  # what the management page confirms after a change
