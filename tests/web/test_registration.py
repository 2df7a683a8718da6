"""Customer registration on the public site in a real browser, with a real SMTP server: the postal code
completes the address (with and without script), the meter must match the customer number (one neutral
message), the address must lie in the meter's area, the address is confirmed by a signed link before any
outage e-mail goes to it, and the management link changes, unsubscribes and deletes."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
import requests
from webkit import Site, shot
from operators import TEST_KEY
from playwright.sync_api import expect
from smtp_sink import smtp_server

from cloud.outage.mail import Sender
from cloud.outage.model import Area, Registration
from cloud.outage.notifier import Notifier, NotifierConfig

METER, CUSTOMER = "SM9000001", "C900000001"
AREA = Area("広島県", "広島市中区", "基町1丁目")  # the fleet's area 0: 〒730-0011 is 広島県 広島市中区 基町
ADDRESS = "hanako@example.net"
NO_MATCH = "計器番号とお客さま番号の組み合わせが、当社の記録と一致しません。"


@pytest.fixture
def smtp():
    with smtp_server() as box:
        yield box


@pytest.fixture
def site(tmp_path, smtp):
    s = Site(tmp_path, smtp=smtp)
    # the utility's record of a meter whose customer has given no e-mail address yet
    s.storage.upsert_registrations([Registration(METER, CUSTOMER, AREA, "CN000000-1")])
    yield s
    s.close()


def fill_registration(page, site, meter=METER, customer=CUSTOMER, postal="730-0011", email=ADDRESS, lang="ja",
                      script=True):
    page.goto(f"{site.url}/register?lang={lang}")
    page.fill("#meter_id", meter)
    page.fill("#customer_number", customer)
    page.fill("#name", "山田 花子")
    page.fill("#email", email)
    page.fill("#postal_code", postal)
    page.fill("#street", "1-2-3 基町ハイツ101")
    if postal and script:  # the address found, as a person sees it before going on
        expect(page.locator("#city")).not_to_have_value("")


def link_in(message, path: str) -> str:
    body = message.get_content()
    return re.search(rf"http://\S+{path}\?\S+", body).group(0)


def notifier(site, smtp) -> Notifier:
    config = NotifierConfig(sender=Sender(TEST_KEY), smtp_host=smtp.host, smtp_port=smtp.port, quiet_start=None,
                            quiet_end=None)
    return Notifier(site.storage, site.clock, config)


def register_and_confirm(page, site, smtp) -> str:
    """Registers in the browser and clicks the e-mail's link; returns the management link."""
    fill_registration(page, site)
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    [mail] = smtp.to(ADDRESS)
    page.goto(link_in(mail, "/register/confirm"))
    page.click("button[type=submit]")
    page.wait_for_selector("text=登録が完了しました")
    return link_in(mail, "/register/manage")


def test_a_person_registers_with_a_postal_code_and_confirms_by_the_e_mail_link(site, smtp, page):
    fill_registration(page, site, postal="")
    page.fill("#postal_code", "７３０００１１")  # typed full-width on a phone
    expect(page.locator("#prefecture")).to_have_value("広島県")  # (a predicate string would break the CSP)
    assert page.input_value("#city") == "広島市中区" and page.input_value("#district") == "基町"
    assert not page.is_visible("#lookup")  # the script completes the address; no button needed
    shot(page, "register_form_ja")
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    assert ADDRESS in page.inner_text("main")
    shot(page, "register_sent_ja")

    record = site.storage.registration(METER)
    assert (record.pending_email, record.email, record.name) == (ADDRESS, None, "山田 花子")
    assert (record.postal_code, record.street, record.area) == ("7300011", "1-2-3 基町ハイツ101", AREA)
    [mail] = smtp.to(ADDRESS)
    assert str(mail["Subject"]).startswith("メールアドレスの確認")
    confirm = link_in(mail, "/register/confirm")

    page.goto(confirm)
    assert site.storage.registration(METER).email is None  # opening the link alone confirms nothing
    page.click("button[type=submit]")
    page.wait_for_selector("text=登録が完了しました")
    assert "基町1丁目" in page.inner_text("main") and not page.is_visible("#outage-now")
    shot(page, "register_confirmed_ja")
    record = site.storage.registration(METER)
    assert (record.email, record.pending_email, record.email_confirmed_at) == (ADDRESS, None, site.clock.now())
    assert record.reachable
    page.goto(confirm)  # a second click
    assert "確認済み" in page.inner_text("main")


@pytest.fixture
def scriptless_page(browser):
    """A browser page with JavaScript off: the forms must work without it."""
    context = browser.new_context(java_script_enabled=False, locale="ja-JP")
    yield context.new_page()
    context.close()


def test_without_script_the_postal_code_is_completed_by_posting_the_form(site, smtp, scriptless_page):
    page = scriptless_page
    fill_registration(page, site, script=False)
    assert page.input_value("#prefecture") == ""
    page.click("#lookup")
    page.wait_for_selector("text=住所を表示しました")
    assert (page.input_value("#prefecture"), page.input_value("#city")) == ("広島県", "広島市中区")
    assert page.input_value("#district") == "基町" and page.input_value("#meter_id") == METER  # input kept
    assert site.storage.registration(METER).pending_email is None and not smtp.messages
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    assert smtp.to(ADDRESS)


def test_a_postal_code_with_one_district_needs_no_district_chosen(site, smtp, scriptless_page):
    """Registering before the address is shown (no script, or a slow line): the code's sole district is
    the customer's, so the registration goes through rather than asking for a district never offered."""
    fill_registration(scriptless_page, site, script=False)
    scriptless_page.click("button[value=register]")
    scriptless_page.wait_for_selector("text=確認メールを送りました")
    assert smtp.to(ADDRESS)


@pytest.mark.parametrize("meter, customer", [(METER, "C000000000"), ("SM9999999", CUSTOMER)],
                         ids=["wrong customer number", "unknown meter"])
def test_a_stranger_cannot_tell_an_unknown_meter_from_a_wrong_customer_number(site, smtp, page, meter, customer):
    fill_registration(page, site, meter=meter, customer=customer)
    page.click("button[value=register]")
    assert page.inner_text("#meter_id-error") == NO_MATCH
    assert page.inner_text("#customer_number-error") == NO_MATCH
    assert page.get_attribute("#customer_number", "aria-invalid") == "true"
    assert not page.is_visible("#postal_code-error")  # nothing else is said about the meter's area
    assert page.input_value("#email") == ADDRESS  # the rest of the input is kept
    assert site.storage.registration(METER).pending_email is None and not smtp.messages
    shot(page, "register_no_match_ja")


def test_a_postal_code_outside_the_meters_area_is_an_error_on_that_field_in_the_pages_language(site, smtp, page):
    fill_registration(page, site, postal="100-0005", lang="en")  # Tokyo, 千代田区丸の内
    expect(page.locator("#prefecture")).to_have_value("東京都")
    page.click("button[value=register]")
    assert page.inner_text("#postal_code-error") == "This postal code is not in the area of the meter's supply point."
    assert not page.is_visible("#meter_id-error")
    assert not smtp.messages
    shot(page, "register_wrong_area_en")


def test_every_field_says_what_is_wrong_next_to_it(site, smtp, page):
    page.goto(site.url + "/register")
    page.fill("#email", "not-an-address")
    page.fill("#postal_code", "12")
    page.click("button[value=register]")
    errors = {f: page.inner_text(f"#{f}-error") for f in ("meter_id", "customer_number", "name", "email", "postal_code",
                                                            "street")}
    assert errors["meter_id"] == errors["name"] == errors["street"] == "入力してください。"
    assert errors["email"] == "メールアドレスの形式が正しくありません。"
    assert errors["postal_code"] == "郵便番号は7桁の数字で入力してください。"
    page.fill("#postal_code", "0000000")
    page.click("button[value=register]")
    assert page.inner_text("#postal_code-error") == "この郵便番号は見つかりません。"


def test_no_outage_e_mail_goes_to_an_address_before_it_is_confirmed(site, smtp, page):
    fill_registration(page, site)
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    smtp.messages.clear()
    site.manager.plan_outage(AREA, site.clock.now() + timedelta(hours=1), site.clock.now() + timedelta(hours=3))
    notifier(site, smtp).run_once()
    assert smtp.recipients and ADDRESS not in smtp.recipients  # the area's other customers were told

    site.storage.confirm_email(METER, ADDRESS, site.clock.now())  # as the link does (tested above)
    smtp.messages.clear()
    site.manager.plan_outage(AREA, site.clock.now() + timedelta(days=1), site.clock.now() + timedelta(days=1, hours=2))
    notifier(site, smtp).run_once()
    [notice] = smtp.to(ADDRESS)
    assert "工事停電のお知らせ" in str(notice["Subject"])


def test_an_address_replaced_before_its_confirmation_gets_nothing_and_its_link_is_void(site, smtp, page):
    fill_registration(page, site)
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    [first] = smtp.to(ADDRESS)
    fill_registration(page, site, email="other@example.net")
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    page.goto(link_in(first, "/register/confirm"))
    assert "リンクが無効です" in page.inner_text("main")
    assert site.storage.registration(METER).pending_email == "other@example.net"


def test_the_confirmation_page_says_when_the_customers_area_is_without_power_now(site, smtp, page):
    fill_registration(page, site)
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    site.area_outage(0, homes=12)
    [mail] = smtp.to(ADDRESS)
    page.goto(link_in(mail, "/register/confirm"))
    page.click("button[type=submit]")
    assert "現在、お住まいの地域で停電が発生しています" in page.inner_text("#outage-now")
    assert page.get_attribute("#outage-now a", "href") == "/area/広島県"
    shot(page, "register_confirmed_outage_ja")
    # S135: the outage manager reads the same store; the customer is now one it would e-mail
    assert site.storage.registrations_in_area(AREA)[-1].reachable


def test_the_management_link_changes_the_registration_and_a_new_address_is_confirmed_again(site, smtp, page):
    manage = register_and_confirm(page, site, smtp)
    page.goto(manage)
    assert METER in page.inner_text("dl.facts") and "〒730-0011" in page.inner_text("dl.facts")
    shot(page, "register_manage_ja")
    page.fill("#name", "山田 花")
    page.fill("#street", "2-3-4")
    page.fill("#email", "new@example.net")
    page.click("button[value=save]")
    page.wait_for_selector("text=new@example.net に確認のメールを送りました")
    record = site.storage.registration(METER)
    assert (record.name, record.street, record.email, record.pending_email) == ("山田 花", "2-3-4", ADDRESS,
                                                                                 "new@example.net")
    page.click("button[value=unsubscribe]")
    page.wait_for_selector("text=配信を停止しました")
    assert site.storage.registration(METER).unsubscribed and not site.storage.registration(METER).reachable
    page.click("button[value=resubscribe]")
    page.wait_for_selector("text=配信を再開しました")
    [confirm_new] = smtp.to("new@example.net")
    page.goto(link_in(confirm_new, "/register/confirm"))
    page.click("button[type=submit]")
    assert site.storage.registration(METER).email == "new@example.net"
    page.goto(manage)  # bound to the old address: void now
    assert "リンクが無効です" in page.inner_text("main")


def test_deleting_removes_the_personal_data(site, smtp, page):
    manage = register_and_confirm(page, site, smtp)
    page.goto(manage)
    page.click("button[value=delete]")  # without ticking the box
    assert page.inner_text("#confirm_delete-error") == "削除する場合は、確認の欄にチェックを入れてください。"
    assert site.storage.registration(METER).email == ADDRESS
    page.check("#confirm_delete")
    page.click("button[value=delete]")
    page.wait_for_selector("text=登録を削除しました")
    record = site.storage.registration(METER)
    assert (record.email, record.pending_email, record.name, record.street, record.postal_code) == (None, None, "", "", "")
    assert record.unsubscribed and not record.reachable
    assert (record.customer_number, record.area) == (CUSTOMER, AREA)  # the utility's own record stays
    page.goto(manage)
    assert "リンクが無効です" in page.inner_text("main")


def test_expired_forged_and_repurposed_links_are_refused(site, smtp, page):
    fill_registration(page, site)
    page.click("button[value=register]")
    page.wait_for_selector("text=確認メールを送りました")
    [mail] = smtp.to(ADDRESS)
    confirm, manage = link_in(mail, "/register/confirm"), link_in(mail, "/register/manage")
    forged = re.sub(r"t=[^&]+", "t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", confirm)
    other_meter = confirm.replace(f"m={METER}", "m=SM0000001")
    repurposed = manage.replace("/register/manage", "/register/confirm")
    for link in (forged, other_meter, repurposed):
        r = requests.get(link, timeout=10)
        assert r.status_code == 400 and "リンクが無効です" in r.text, link
    r = requests.post(site.url + "/register/confirm", data=dict(re.findall(r"([mxt])=([^&]+)", forged)), timeout=10)
    assert r.status_code == 400 and site.storage.registration(METER).email is None
    site.clock.advance(timedelta(days=2, minutes=1))
    page.goto(confirm)
    assert "リンクが無効です" in page.inner_text("main")
    assert site.storage.registration(METER).email is None
    shot(page, "register_link_bad_ja")


def test_posts_need_a_fresh_form_token_from_this_site_and_are_limited_per_address(site, smtp):
    fields = {"meter_id": METER, "customer_number": CUSTOMER, "name": "x", "email": ADDRESS, "postal_code": "7300011",
              "district": "基町", "street": "1", "action": "register"}
    r = requests.post(site.url + "/register", data=fields, timeout=10)
    assert r.status_code == 400 and "ページの有効期限が切れました" in r.text
    token = re.search(r'name="token" value="([^"]+)"', requests.get(site.url + "/register", timeout=10).text).group(1)
    r = requests.post(site.url + "/register", data={**fields, "token": token}, headers={"Origin": "https://evil.example"},
                      timeout=10)
    assert r.status_code == 403
    assert site.storage.registration(METER).pending_email is None and not smtp.messages
    site.clock.advance(timedelta(hours=2, minutes=1))
    r = requests.post(site.url + "/register", data={**fields, "token": token}, timeout=10)
    assert r.status_code == 400 and not smtp.messages  # the form is too old
    statuses = [requests.post(site.url + "/register", data={**fields, "action": "lookup"}, timeout=10).status_code
                for _ in range(20)]
    assert statuses[-1] == 429 and 429 not in statuses[:17]
    assert requests.get(site.url + "/postal/7300011", timeout=10).json()["districts"] == ["基町"]
    assert requests.get(site.url + "/postal/0000000", timeout=10).status_code == 404


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_registration_fits_a_phone(site, smtp, browser, lang):
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ja-JP")
    page = context.new_page()
    try:
        fill_registration(page, site, lang=lang)
        expect(page.locator("#city")).to_have_value("広島市中区")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shot(page, f"register_form_phone_{lang}")
        page.goto(f"{site.url}/register?lang={lang}")
        page.click("button[value=register]")
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        shot(page, f"register_errors_phone_{lang}")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.tagName") in ("A", "INPUT")  # reachable by keyboard
    finally:
        context.close()
