"""Every page of both sites, in Japanese and English, at desktop (1280 px) and phone (360 px) width: a
screenshot of each, and the accessibility checks of a11y.js: every field labelled, every drawing named
or hidden, the page's language declared, one h1, no id twice, text contrast to WCAG AA (4.5:1, 3:1 for
large text), nothing wider than a phone, fingers' targets of 44 px in the bars and on buttons, and every
link and control reached by the Tab key with a visible focus mark.

The sweep fails when the app has a GET route no visit opens, so a new page cannot escape it."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit

from cardkit import certified_company
from operators import OPERATOR, TEST_KEY, VIEWER
from playwright.sync_api import expect
from smtp_sink import smtp_server
from webkit import Site, shot, sign_in

from appliance.clock import JST, ManualClock
from appliance.datatypes import parse_data_types
from appliance.domain import Role
from appliance.trust import keys
from cloud.outage.mail import Sender
from cloud.outage.model import Area, Language, Registration
from cloud.switch_desk import DeskCompany, SerialBook, SwitchDesk
from cloud.web.mailer import Mailer, link_subject

CHECKS = (Path(__file__).parent / "a11y.js").read_text()
WIDTHS = {"desktop": 1280, "phone": 360}
MAX_TABS = 300  # a page with more stops than this is too long to walk by keyboard anyway
# GET routes that are no page: what the pages' scripts fetch
NOT_PAGES = {
    "/live": "the public tables' event stream",
    "/ops/live": "the notice column's event stream",
    "/ops/map/live": "the map's event stream",
    "/mypage/live": "the customer page's event stream",
    "/postal/{code}": "the address form's postal data (JSON)",
    "/ops/notices": "the notice column, refetched into the list",
}
NEW_METER, NEW_CUSTOMER, NEW_EMAIL = "SM9000001", "C900000001", "hanako@example.net"  # registers on the site
AREA0 = Area("広島県", "広島市中区", "基町1丁目")  # the fleet's area 0: 〒730-0011
CUSTOMER = 21  # a fleet customer (area 1) with a confirmed address: the customer's page


@dataclass(frozen=True)
class Visit:
    """One page in one state: ``go`` opens it in a language (and does whatever brings it there)."""

    name: str
    go: Callable
    who: str = "public"  # the browser: public (signed out), operator, viewer


def with_lang(url: str, lang: str) -> str:
    return url + ("&" if "?" in url else "?") + "lang=" + lang


class World:
    """The site with what its pages show: outages accident and planned, a customer on the customer's
    page with contracts and a company to switch to, and a meter whose owner registers on the site."""

    def __init__(self, tmp_path: Path, smtp) -> None:
        clock = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=JST))
        company = certified_company(keys.generate(), "B", "Bでんき", Role.SUPPLY)
        desk = SwitchDesk(DeskCompany("B", "Bでんき", Role.SUPPLY, "mqtt://b.example.jp", parse_data_types("time,energy"),
                                      ("スタンダード", "夜トク")),
                          key=company.key, certificate=company.cert, serials=SerialBook(tmp_path / "b-serial"),
                          publish=lambda topic, payload: None, clock=clock, secret=b"test")
        self.site = site = Site(tmp_path, smtp=smtp, clock=clock, desks=[desk])
        self.links = Mailer(Sender(TEST_KEY), site.url)
        site.storage.upsert_registrations([Registration(NEW_METER, NEW_CUSTOMER, AREA0, "CN000000-1")])
        self.outage = site.area_outage(1, homes=12)
        site.area_outage(0, homes=3)
        site.area_outage(7, homes=140)
        start = clock.now() + timedelta(days=1)
        site.manager.plan_outage(site.area(2), start, start + timedelta(hours=3))
        self.customer = site.storage.registration(f"SM{CUSTOMER:07d}")
        now = clock.now()
        site.storage.save_contract_states([(self.customer.meter_id, 3, now, {
            "in_force": [{"role": "supply", "name": "A電力", "menu": "スタンダード", "data_types": ["time", "power", "energy"],
                          "since": "2026-04-01T00:00:00+09:00"}],
            "pending": [{"action": "contract", "kind": "supply", "name": "Bでんき", "menu": "夜トク",
                         "switch": {"weekly": [{"day": "mon", "at": "22:00"}]}, "source": "remote:B"}]})], now)

    def signed(self, path: str, signer, meter_id: str, email: str) -> str:
        expires, token = signer.sign(link_subject(meter_id, email), self.site.clock.now())
        return f"{self.site.url}{path}?{urlencode({'m': meter_id, 'x': expires, 't': token})}"

    def visits(self) -> list[Visit]:
        site, url, links = self.site, self.site.url, self.links
        customer = self.customer
        mypage = lambda: self.signed("/mypage", links.mypage_links, customer.meter_id, customer.email)
        confirm = lambda: self.signed("/register/confirm", links.confirm_links, NEW_METER, NEW_EMAIL)

        def opens(path: str | Callable[[], str]) -> Callable:
            return lambda page, lang: page.goto(with_lang(path() if callable(path) else url + path, lang))

        def register(page, lang, postal="730-0011", meter=NEW_METER, customer_number=NEW_CUSTOMER, email=NEW_EMAIL):
            page.goto(with_lang(url + "/register", lang))
            for field, value in (("meter_id", meter), ("customer_number", customer_number), ("name", "山田 花子"),
                                 ("email", email), ("postal_code", postal), ("street", "1-2-3 基町ハイツ101")):
                page.fill(f"#{field}", value)

        def register_errors(page, lang):
            register(page, lang, postal="100-0000", customer_number="C000000000", email="hanako@")
            page.click("button[value=register]")
            page.wait_for_selector(".field-error")

        def register_address(page, lang):
            page.goto(with_lang(url + "/register", lang))
            page.fill("#postal_code", "7300011")
            expect(page.locator("#prefecture")).to_have_value("広島県")

        def register_sent(page, lang):
            register(page, lang)
            page.click("button[value=register]")
            page.wait_for_url(url + "/register")
            page.wait_for_selector("h1")

        def confirmed(page, lang):
            site.storage.request_email(NEW_METER, NEW_EMAIL, "山田 花子", "1-2-3", "7300011", Language(lang))
            page.goto(with_lang(confirm(), lang))
            page.click("main form button[type=submit]")
            page.wait_for_url(url + "/register/confirm")

        def signin_sent(page, lang):
            page.goto(with_lang(url + "/mypage/signin", lang))
            page.fill("#meter_id", customer.meter_id)
            page.fill("#customer_number", customer.customer_number)
            page.click("main button[type=submit]")
            page.wait_for_url(url + "/mypage/signin")

        def switch_offer(page, lang):
            page.goto(with_lang(mypage(), lang))
            page.select_option("#plan", "B|夜トク")
            page.check("#when-immediate")
            page.click("button[value=offer]")
            page.wait_for_selector("#offer")

        def switch_errors(page, lang):
            page.goto(with_lang(mypage(), lang))
            page.check("#when-weekly")
            page.click("button[value=offer]")
            page.wait_for_selector("#days-error")

        def login_failed(page, lang):
            page.goto(with_lang(url + "/ops/login", lang))
            page.fill("#name", OPERATOR[0])
            page.fill("#password", "not the password")
            page.click("main button[type=submit]")
            page.wait_for_selector(".error")

        def outage_errors(page, lang):
            page.goto(with_lang(url + f"/ops/outages/{self.outage.id}", lang))
            page.fill("#expected_restoration", "2026-11-01T00:00")  # before the outage began
            page.click("form.form button[type=submit]")
            page.wait_for_selector(".field-error")

        pref = AREA0.prefecture
        return [
            Visit("lookup", opens("/")),
            Visit("lookup-prefecture", opens(f"/area/{pref}")),
            Visit("lookup-city", opens(f"/area/{pref}/{AREA0.city}")),
            Visit("register", opens("/register")),
            Visit("register-address", register_address),
            Visit("register-errors", register_errors),
            Visit("register-sent", register_sent),
            Visit("register-confirm", opens(confirm)),
            Visit("register-confirmed", confirmed),
            Visit("register-link-bad", opens(f"/register/confirm?m={NEW_METER}&x=1&t=forged")),
            Visit("register-manage", opens(lambda: self.signed("/register/manage", links.manage_links, NEW_METER,
                                                               NEW_EMAIL))),
            Visit("mypage-signin", opens("/mypage/signin")),
            Visit("mypage-signin-sent", signin_sent),
            Visit("mypage", opens(mypage)),
            Visit("mypage-errors", switch_errors),
            Visit("mypage-confirm", switch_offer),
            Visit("ops-login", opens("/ops/login")),
            Visit("ops-login-failed", login_failed),
            Visit("ops-list", opens("/ops/"), "operator"),
            Visit("ops-list-planned", opens("/ops/list/planned"), "operator"),
            Visit("ops-outage", opens(f"/ops/outages/{self.outage.id}"), "operator"),
            Visit("ops-outage-errors", outage_errors, "operator"),
            Visit("ops-outage-viewer", opens(f"/ops/outages/{self.outage.id}"), "viewer"),
            Visit("ops-not-found", opens("/ops/outages/999999"), "operator"),
            Visit("ops-audit", opens("/ops/audit"), "operator"),
            Visit("ops-map", opens("/ops/map"), "operator"),
            Visit("ops-map-planned", opens("/ops/map/planned"), "operator"),
            Visit("ops-map-pref", opens(f"/ops/map?pref={pref}"), "operator"),
            Visit("ops-search", opens("/ops/search"), "operator"),
            Visit("ops-search-results", opens("/ops/search?q=広島市"), "operator"),
            Visit("ops-by-address", opens("/ops/by-address"), "operator"),
            Visit("ops-by-address-city", opens(f"/ops/by-address?prefecture={pref}&city={self.outage.area.city}"),
                  "operator"),
            Visit("ops-customer", opens(f"/ops/customers/{customer.meter_id}"), "operator"),
        ]


@pytest.fixture
def world(tmp_path):
    with smtp_server() as box:
        w = World(tmp_path, box)
        try:
            yield w
        finally:
            w.site.close()


def check(page, lang: str, phone: bool) -> list[str]:
    """a11y.js on the page as it is, then the Tab key walked through it."""
    found = page.evaluate(CHECKS, {"lang": lang, "phone": phone})
    for _ in range(min(2 * found["tabs"] + 10, MAX_TABS)):  # a date-time field has a stop per part
        page.keyboard.press("Tab")
    return found["problems"] + page.evaluate("window.__a11yFocus()")


def test_every_page_in_both_languages_at_both_widths(world, browser):
    site = world.site
    contexts = {}

    def browser_for(who: str):
        if who not in contexts:
            context = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 800}, locale="ja-JP",
                                          timezone_id="Asia/Tokyo")
            contexts[who] = context.new_page()
            if who != "public":
                sign_in(contexts[who], site, OPERATOR if who == "operator" else VIEWER)
        return contexts[who]

    problems: dict[str, list[str]] = {}
    visited: set[str] = set()
    try:
        for visit in world.visits():
            page = browser_for(visit.who)
            for lang in ("ja", "en"):
                page.set_viewport_size({"width": WIDTHS["desktop"], "height": 800})
                visit.go(page, lang)
                visited.add(urlparse(page.url).path)
                for form, width in WIDTHS.items():
                    page.set_viewport_size({"width": width, "height": 800})
                    page.evaluate("document.activeElement && document.activeElement.blur()")  # no ring left from the walk
                    shot(page, f"{visit.name}-{lang}-{form}")
                    for problem in check(page, lang, form == "phone"):
                        problems.setdefault(f"{visit.name}-{lang}-{form}", []).append(problem)
    finally:
        for page in contexts.values():
            page.context.close()

    routes = [r for r in site.server.config.app.routes if "GET" in (getattr(r, "methods", None) or ())]
    missed = [r.path for r in routes if r.path not in NOT_PAGES and not any(r.path_regex.match(p) for p in visited)]
    assert not missed, f"pages the sweep never opens: {missed}"
    assert not problems, "\n".join(f"{where}: {p}" for where, found in problems.items() for p in found)


FAULTY = """<!doctype html><html lang="en"><body style="margin:0">
<header><a href="/" style="font-size:12px">Home</a></header>
<h1>One</h1><h1 id="twice">Two</h1><p id="twice" style="color:#999">Grey on white</p>
<input id="nameless"><svg width="10" height="10"><rect width="10" height="10"/></svg>
<a href="/x" style="outline:none">No ring</a>
<button type="button" tabindex="-1">Out of reach</button>
<table style="width:600px"><tr><td>wide</td></tr></table></body></html>"""


def test_the_checks_find_what_they_look_for(page):
    """Each check fails on a page built to break it (else a sweep that finds nothing proves nothing)."""
    page.set_viewport_size({"width": 360, "height": 800})
    page.set_content(FAULTY)
    found = "\n".join(check(page, "ja", phone=True))
    for problem in ('html lang is "en"', "2 h1 headings", 'id "twice" used 2 times', "form field without a label",
                    "drawing without a title", "contrast 2.85:1", "page 600 px wide", "touch target", "no visible focus: a",
                    "not reached by Tab: button"):
        assert problem in found, problem
