"""The operators' search and the Fig. 10 customer screen in a real browser: an operator finds a customer
by part of the address, by customer number and by meter id, sees where they hang in the distribution
system, the outage that reaches them and the e-mail they were sent, and goes on to the outage to enter
its expected restoration; the notice column of the list shows distribution automation's events as
they arrive; nobody signed out gets in, and a viewer is shown no way to change anything."""
from __future__ import annotations

import re
from datetime import timedelta

import requests
from webkit import VIEWER_LOGIN, shot, sign_in

from cloud.outage.model import DaEvent, Event, NotificationState
from cloud.outage.topology import circuit_of

METER = 21  # in area 1 (areas of 20 meters)


def _mail_sent(site, outage, n: int = METER) -> None:
    """The customer was e-mailed about ``outage`` (as a notifier records it)."""
    meter, now = f"SM{n:07d}", site.clock.now()
    site.storage.add_notifications([(f"{outage.id}:{meter}:declared", Event.DECLARED, meter, outage.id, True, now, {})], now)
    [claimed] = site.storage.claim_notifications("n1", now, 60, 10, urgent_only=True)
    site.storage.finish_notification(claimed.id, "n1", NotificationState.SENT, now + timedelta(seconds=2))


def test_an_operator_finds_the_customer_and_enters_the_expected_restoration(site, page):
    outage = site.area_outage(1, homes=12)
    _mail_sent(site, outage)
    area = site.area(1)
    sign_in(page, site)
    notices = page.locator("#notices")
    assert f"配電自動化システム：停電 {area.label(' ')}" in notices.inner_text()
    # a distribution-automation event arriving while the list is open appears without a reload
    page.wait_for_timeout(800)  # the page is listening
    site.clock.advance(timedelta(minutes=5))
    site.manager.report_da(DaEvent(site.area(4), "outage", site.clock.now(), "DA-2"))
    page.wait_for_selector(f"#notices li:first-child:has-text('{site.area(4).city}')", timeout=10_000)
    shot(page, "ops-list-notices-ja-desktop")

    page.fill("#q", f"{area.city} {area.district}")  # the list's search box, part of the address
    page.click("form.search button")
    page.wait_for_url(re.compile(r"/ops/search\?q="))
    row = page.locator(f"table.found tr:has-text('SM{METER:07d}')")
    assert "停電中" in row.inner_text() and page.locator("table.found tbody tr").count() == 20
    shot(page, "ops-search-ja-desktop")
    for query in (f"C{METER:09d}", f"sm{METER:07d}"):  # the customer number; the meter id as typed
        page.fill("#q", query)
        page.click("form.search button")
        assert page.locator("table.found tbody tr").all_inner_texts()[0].startswith(f"SM{METER:07d}")

    page.click(f"a[href='/ops/customers/SM{METER:07d}']")
    circuit = circuit_of(site.spec, METER)
    system = page.locator("section[aria-labelledby=system]").inner_text()
    assert all(part in system for part in (circuit.substation, circuit.feeder, circuit.section, f"CN{1:06d}-"))
    assert "12戸（最大12戸）" in page.locator("section[aria-labelledby=outages]").inner_text()
    told = page.locator("section[aria-labelledby=sent]").inner_text()
    assert "停電のお知らせ" in told and "送信済み" in told
    assert "***@example.jp" in page.inner_text("main") and f"c{METER:07d}@" not in page.inner_text("main")
    shot(page, "ops-customer-fig10-ja-desktop")

    page.click("text=復旧予定の入力")
    page.wait_for_url(site.url + f"/ops/outages/{outage.id}")
    page.fill("#expected_restoration", "2026-11-23T14:00")
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"saved=1"))
    assert site.storage.outage(outage.id).expected_restoration.isoformat() == "2026-11-23T14:00:00+09:00"


def test_the_search_pages_refuse_anyone_signed_out(site):
    for path in ("/ops/search?q=基町", "/ops/by-address", f"/ops/customers/SM{METER:07d}", "/ops/notices"):
        r = requests.get(site.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/ops/login"), path
    assert requests.get(site.url + "/ops/live", timeout=10).status_code == 403


def test_a_viewer_reads_the_pages_at_both_widths_in_both_languages(site, browser):
    outage = site.area_outage(1, homes=12)
    _mail_sent(site, outage)
    area = site.area(1)
    for lang, width in (("en", 360), ("en", 1280), ("ja", 360)):
        context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=width < 400)
        page = context.new_page()
        try:
            page.goto(site.url + f"/ops/login?lang={lang}")
            sign_in(page, site, VIEWER_LOGIN)
            form = "phone" if width < 400 else "desktop"
            page.goto(site.url + "/ops/by-address")
            page.click(f"a:has-text('{area.prefecture}')")
            page.click(f"a:has-text('{area.city}')")
            assert area.district in page.locator("table.list").inner_text()
            shot(page, f"ops-by-address-{lang}-{form}")
            page.goto(site.url + "/ops/search?" + requests.compat.urlencode({"q": area.city}))
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, f"ops-search-{lang}-{form}")
            page.goto(site.url + f"/ops/customers/SM{METER:07d}")
            assert page.locator(f"section[aria-labelledby=outages] a[href='/ops/outages/{outage.id}']").inner_text() == \
                ("Open outage {}" if lang == "en" else "停電 {} を開く").format(outage.id)  # no input for a viewer
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            shot(page, f"ops-customer-fig10-{lang}-{form}")
        finally:
            context.close()
