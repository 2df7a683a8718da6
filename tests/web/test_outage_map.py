"""The outage distribution maps (JP6794864B2 Fig. 9) in a real browser: sign-in only, an area outage
shaded and counted with its key, into the prefecture and on to that area's list, updated live while
the page is open, the planned outage map, and English at phone width."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import requests
from webkit import VIEWER_LOGIN, shot, sign_in

from cloud.outage.model import OutageStatus


def test_anonymous_visitors_are_sent_to_sign_in_and_come_back_to_the_map(site, page):
    for path in ("/ops/map", "/ops/map/planned", "/ops/map?fragment=1"):
        r = requests.get(site.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/ops/login"), path
    assert requests.get(site.url + "/ops/map/live", timeout=10).status_code == 401
    page.goto(site.url + "/ops/map?pref=" + quote("広島県"))
    page.fill("#name", VIEWER_LOGIN[0])  # a viewer may look at the map
    page.fill("#password", VIEWER_LOGIN[1])
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/ops/map\?pref="))
    assert page.inner_text("h1") == "広島県の事故停電マップ"


def test_an_area_outage_is_shaded_counted_and_leads_to_its_list(site, page):
    outage = site.area_outage(1, homes=20)
    site.area_outage(3, homes=0)  # declared, its homes still being counted
    area = outage.area
    sign_in(page, site)
    page.click("nav.ops >> text=事故停電マップ")
    region = page.locator(f"svg.map a[aria-label^='{area.prefecture}']")
    assert region.get_attribute("aria-label") == f"{area.prefecture}　20戸"
    assert region.get_attribute("class") == "shade-1"  # 10-49 homes, as the key says
    assert page.locator("svg.map title").text_content() == "事故停電マップ"
    assert "10〜49戸" in page.inner_text(".legend") and "停電あり（戸数確認中）" in page.inner_text(".legend")
    assert "発生中の停電 2件・停電戸数 20戸" in page.inner_text(".map-total")
    row = page.locator("table.map-table tbody tr").all_inner_texts()
    assert len(row) == 1 and area.prefecture in row[0] and "2件" in row[0] and "20戸" in row[0]
    shot(page, "ops-map-ja-desktop")
    region.click()  # into the prefecture: its cities and the districts with outages
    page.wait_for_url(re.compile(r"pref="))
    cell = page.locator(f"svg.schematic a[aria-label^='{area.city} {area.district}']")
    assert cell.get_attribute("class") == "shade-1" and "20戸" in cell.get_attribute("aria-label")
    counting = page.locator(f"svg.schematic a[aria-label^='{site.area(3).city} {site.area(3).district}']")
    assert counting.get_attribute("class") == "shade-counting"
    shot(page, "ops-map-pref-ja-desktop")
    cell.click()
    page.wait_for_url(re.compile(r"/ops/\?area="))
    rows = page.locator("table.list tbody tr").all_inner_texts()
    assert len(rows) == 1 and area.district in rows[0] and "20戸" in rows[0]


def test_the_map_updates_while_it_is_open(site, page):
    sign_in(page, site)
    page.goto(site.url + "/ops/map")
    assert "現在、停電は発生していません。" in page.inner_text("#live-table")
    page.evaluate("window.stillTheSamePage = true")
    page.wait_for_timeout(800)  # the page is listening
    outage = site.area_outage(5, homes=60)
    region = f"svg.map a.shade-2[aria-label='{outage.area.prefecture}　60戸']"
    page.wait_for_selector(region, timeout=10_000)
    restored = site.storage.outage(outage.id)
    restored.status, restored.restored_at, restored.current_count = OutageStatus.RESTORED, site.clock.now(), 0
    site.storage.save_outage(restored)
    page.wait_for_selector(f"svg.map a.shade-none[aria-label='{outage.area.prefecture}　停電なし']", timeout=10_000)
    assert page.evaluate("window.stillTheSamePage") is True  # no reload


def test_the_planned_map_shows_planned_work_not_outages(site, page):
    area = site.area(2)
    start = site.clock.now() + timedelta(days=1)
    site.manager.plan_outage(area, start, start + timedelta(hours=3))
    homes = len(site.storage.registrations_in_area(area))
    sign_in(page, site)
    page.goto(site.url + "/ops/map/planned")
    assert page.inner_text("h1") == "工事停電マップ"
    region = page.locator(f"svg.map a[aria-label='{area.prefecture}　{homes}戸']")
    assert homes > 0 and region.count() == 1
    page.click(f"table.map-table a[aria-label='{area.prefecture}の停電一覧を見る']")
    page.wait_for_url(re.compile(r"/ops/list/planned\?area="))
    assert page.locator("table.list tbody tr").count() == 1
    page.goto(site.url + "/ops/map")  # not an accident
    assert "現在、停電は発生していません。" in page.inner_text("#live-table")
    page.goto(site.url + "/ops/map/planned")
    shot(page, "ops-map-planned-ja-desktop")


def test_english_and_phone_width(site, browser):
    outage = site.area_outage(1, homes=1200)
    for lang, width in (("en", 360), ("ja", 360), ("en", 1280)):
        context = browser.new_context(viewport={"width": width, "height": 800}, is_mobile=width < 400)
        page = context.new_page()
        try:
            sign_in(page, site)
            device = "phone" if width < 400 else "desktop"
            page.goto(site.url + f"/ops/map?lang={lang}")
            shot(page, f"ops-map-{lang}-{device}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            label = page.locator("svg.map a.shade-4").get_attribute("aria-label")
            assert label == (f"{outage.area.prefecture}: 1,200 homes" if lang == "en" else f"{outage.area.prefecture}　1,200戸")
            page.goto(site.url + "/ops/map?pref=" + quote(outage.area.prefecture))
            shot(page, f"ops-map-pref-{lang}-{device}")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
        finally:
            context.close()
