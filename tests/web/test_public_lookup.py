"""The public outage lookup in a real browser: counts per prefecture and per city/district, no
personal data, Japanese first with English selectable, live updates without a reload, readable at
phone width, and nothing loaded from anywhere but the site."""
from __future__ import annotations

import re

from webkit import shot


def test_no_outage_is_said_plainly(site, page):
    page.goto(site.url + "/")
    assert page.locator("html").get_attribute("lang") == "ja"
    assert "現在、停電は発生していません。" in page.inner_text("main")
    shot(page, "lookup_none_ja")


def test_counts_per_prefecture_then_per_place_and_nothing_personal(site, page):
    outage = site.area_outage(1, homes=20)
    area = outage.area
    page.goto(site.url + "/")
    row = page.locator("tbody tr").first
    assert area.prefecture in row.inner_text()
    assert f"{outage.current_count}戸" in row.inner_text() and outage.current_count > 0
    assert "2026年11月23日 10:00" in row.inner_text()  # JST, as people write it
    shot(page, "lookup_prefectures_ja")
    page.click(f"text={area.prefecture}")
    page.wait_for_url(re.compile(r"/area/"))
    text = page.inner_text("main")  # per city first: a storm can put thousands of districts out at once
    assert area.city in text and f"{outage.current_count}戸" in text and "1地域" in text and area.district not in text
    page.click(f"text={area.city}")
    page.wait_for_url(re.compile(r"/area/.+/.+"))
    text = page.inner_text("main")
    assert area.district in text and f"{outage.current_count}戸" in text and "調査中" in text
    registered = site.storage.registrations_in_area(area)
    for reg in registered:  # no name, meter id, customer number or e-mail on a public page
        assert reg.name not in page.content() and reg.meter_id not in page.content()
        assert reg.customer_number not in page.content()
    shot(page, "lookup_places_ja")


def test_english_is_selectable_and_kept(site, page):
    site.area_outage(1, homes=20)
    page.goto(site.url + "/")
    page.click("a.lang")
    assert page.locator("html").get_attribute("lang") == "en"
    assert "Power outages now" in page.inner_text("h1")
    assert "2026-11-23 10:00 JST" in page.inner_text("tbody")
    page.goto(site.url + "/")  # the choice is kept
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "lookup_prefectures_en")


def test_the_table_updates_by_itself_when_an_outage_is_declared(site, page):
    page.goto(site.url + "/")
    assert page.locator("tbody tr").count() == 0
    page.wait_for_timeout(800)  # the page is listening
    outage = site.area_outage(2)  # declared by DA: its homes are still being counted
    page.wait_for_selector(f"tbody tr:has-text('{outage.area.prefecture}')", timeout=10_000)
    assert "確認中" in page.inner_text("tbody")


def test_phone_width_and_keyboard(site, browser):
    site.area_outage(1, homes=20)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ja-JP", is_mobile=True)
    page = context.new_page()
    try:
        page.goto(site.url + "/")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 360, f"the page is {width} px wide at 360 px: it scrolls sideways"
        page.keyboard.press("Tab")  # the first stop is a real link, visibly focused
        focused = page.evaluate("document.activeElement.tagName + ' ' + document.activeElement.textContent")
        assert focused.startswith("A ")
        shot(page, "lookup_prefectures_ja_phone")
    finally:
        context.close()


def test_every_resource_comes_from_the_site_itself(site, page):
    site.area_outage(1, homes=20)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.goto(site.url + "/")
    page.wait_for_load_state("networkidle")
    assert seen and all(u.startswith(site.url) for u in seen), seen
    response = page.request.get(site.url + "/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
