"""The operations site in a real browser: sign-in only, the outage list (filter, sort, pages), the
operator's form (expected restoration e-mails no one here: the store records the change), a viewer
who cannot change anything, CSRF tokens checked, and the audit log of every input."""
from __future__ import annotations

import re
from datetime import timedelta

import requests
import pytest
from webkit import VIEWER_LOGIN, shot, sign_in

from cloud.outage.model import OutageStatus


def test_every_operations_page_refuses_anonymous_visitors(site):
    outage = site.area_outage(1, homes=20)
    for path in ("/ops/", "/ops/list/planned", f"/ops/outages/{outage.id}", "/ops/audit"):
        r = requests.get(site.url + path, allow_redirects=False, timeout=10)
        assert r.status_code == 303 and r.headers["location"].startswith("/ops/login"), path
    r = requests.post(site.url + f"/ops/outages/{outage.id}", data={"response_status": "dispatched"}, allow_redirects=False, timeout=10)
    assert r.status_code == 303 and site.storage.outage(outage.id).response_status == "investigating"


def test_a_wrong_password_is_refused_and_recorded(site, page):
    page.goto(site.url + "/ops/login")
    page.fill("#name", "ops")
    page.fill("#password", "not-the-password")
    page.click("button[type=submit]")
    assert "ユーザー名またはパスワードが違います。" in page.inner_text("main")
    [entry] = site.storage.audit_entries()
    assert entry.action == "login_failed" and entry.actor == "ops"
    shot(page, "ops_login_failed_ja")


def test_the_list_filters_sorts_and_pages(site, page):
    for i in range(6):
        site.area_outage(i, homes=10 + i)
        site.clock.advance(timedelta(minutes=10))
    sign_in(page, site)
    rows = page.locator("table.list tbody tr")
    assert rows.count() == 6
    assert "2026年11月23日 10:50" in rows.first.inner_text()  # newest first
    page.click("th >> text=停電戸数")  # sort by homes, most first
    assert "15戸" in page.locator("table.list tbody tr").first.inner_text()
    page.fill("#area", site.area(2).city)
    page.click("form.filters button")
    texts = page.locator("table.list tbody tr").all_inner_texts()
    assert texts and all(site.area(2).city in t for t in texts)
    shot(page, "ops_list_ja")


def test_the_operator_sets_an_expected_restoration_and_it_is_audited(site, page):
    outage = site.area_outage(1, homes=20)
    sign_in(page, site)
    page.click(f"a[href='/ops/outages/{outage.id}']")
    page.select_option("#response_status", "dispatched")
    page.select_option("#reason", "tree_contact")
    page.fill("#expected_restoration", "2026-11-23T13:30")
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"saved=1"))
    assert "保存しました" in page.inner_text("main")
    saved = site.storage.outage(outage.id)
    assert saved.response_status == "dispatched" and saved.reason == "tree_contact"
    assert saved.expected_restoration.isoformat() == "2026-11-23T13:30:00+09:00"
    entry = site.storage.audit_entries()[0]
    assert (entry.actor, entry.action, entry.target) == ("ops", "outage_update", f"outage:{outage.id}")
    page.goto(site.url + "/ops/audit")
    assert "停電情報の入力" in page.inner_text("table")  # the action in words
    shot(page, "ops_audit_ja")


def test_a_bad_time_is_said_next_to_its_field(site, page):
    outage = site.area_outage(1, homes=20)
    sign_in(page, site)
    page.goto(site.url + f"/ops/outages/{outage.id}")
    page.fill("#expected_restoration", "2026-11-23T08:00")  # before the outage began
    page.click("form.form button[type=submit]")
    assert page.locator("#expected-error").inner_text() == "停電日時より前の復旧予定は入力できません。"
    assert page.get_attribute("#expected_restoration", "aria-invalid") == "true"
    assert site.storage.outage(outage.id).expected_restoration is None
    shot(page, "ops_outage_error_ja")


def test_a_viewer_sees_but_cannot_change(site, page):
    outage = site.area_outage(1, homes=20)
    sign_in(page, site, VIEWER_LOGIN)
    page.goto(site.url + f"/ops/outages/{outage.id}")
    assert "閲覧のみのアカウントでは入力できません。" in page.inner_text("main")
    assert page.locator("form.form").count() == 0
    # and a hand-made post with the viewer's own session and token is refused too
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    from cloud.web.auth import COOKIE, Sessions
    from operators import TEST_KEY

    token = Sessions(TEST_KEY).csrf(Sessions(TEST_KEY).read(cookies[COOKIE], site.clock.now()))
    r = requests.post(site.url + f"/ops/outages/{outage.id}", cookies={COOKIE: cookies[COOKIE]},
                   data={"csrf": token, "response_status": "dispatched", "reason": "weather"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and site.storage.outage(outage.id).response_status == "investigating"


@pytest.mark.parametrize("token", ["", "forged-token"])
def test_a_form_without_the_sessions_csrf_token_is_refused(site, page, token):
    outage = site.area_outage(1, homes=20)
    sign_in(page, site)
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    r = requests.post(site.url + f"/ops/outages/{outage.id}", cookies=cookies,
                   data={"csrf": token, "response_status": "dispatched", "reason": "weather"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and site.storage.outage(outage.id).status is OutageStatus.DECLARED
    assert site.storage.outage(outage.id).response_status == "investigating"


def test_the_operations_pages_at_phone_width_in_english(site, browser):
    site.area_outage(1, homes=20)
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="en-US", is_mobile=True)
    page = context.new_page()
    try:
        page.goto(site.url + "/ops/login?lang=en")
        sign_in(page, site)
        assert page.locator("html").get_attribute("lang") == "en"
        assert "Outages" in page.inner_text("h1")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shot(page, "ops_list_en_phone")
    finally:
        context.close()
