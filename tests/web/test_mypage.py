"""JP5159864B2 embodiment 3 in a real browser: a customer signs in with their registration, switches
power company from their page, the company's desk sends the signed contract change over a real
Mosquitto, the real meter service (emulated chip over Modbus TCP) verifies and applies it after the
company's confirmation (embodiment 4), and the page shows it live. A security error reaches the page."""
from __future__ import annotations

import re
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "appliance"))  # meter_rig
sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit

from cardkit import certified_company  # noqa: E402
from meter_rig import METER, Rig, supply  # noqa: E402
from polling import wait_for  # noqa: E402
from smtp_sink import smtp_server  # noqa: E402
from webkit import Site, shot  # noqa: E402

from appliance.confirmation import ConfirmationSettings  # noqa: E402
from appliance.datatypes import parse_data_types  # noqa: E402
from appliance.domain import Role  # noqa: E402
from appliance.trust import keys  # noqa: E402
from cloud.outage.model import Area, Language, Registration  # noqa: E402
from cloud.switch_desk import DeskCompany, MqttPublisher, SerialBook, SwitchDesk  # noqa: E402

EMAIL = "hanako@example.jp"


class Stepper:
    """Runs the meter service's steps in the background as its own loop would, its clock running on
    (a second per step): the company's answer arrives at a later step than its request."""

    def __init__(self, rig) -> None:
        self.rig, self.stop = rig, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.rig.service.step()
            self.rig.clock.advance(timedelta(seconds=1))
            time.sleep(0.03)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def world(tmp_path, broker, clock):
    from cloud.outage.collector import Collector

    root = keys.generate()
    companies = {"A": certified_company(root, "A", "A電力", Role.SUPPLY),
                 "B": certified_company(root, "B", "Bでんき", Role.SUPPLY)}
    options = {code: {"key": c.key, "certificate": c.cert, "now": clock.now,
                      "records": {METER: ["time", "power", "energy"]} if code == "A" else None}
               for code, c in companies.items()}
    rig = Rig(tmp_path, broker, clock, companies=("A", "B"), company_options=options,
              service_options={"root_public_key": keys.public_raw(root),
                               "confirmation": ConfirmationSettings(enabled=True, timeout=timedelta(seconds=30),
                                                                    retry_max=timedelta(minutes=5))})
    rig.commission(supply("A", "time,power,energy"))
    b = companies["B"]
    publisher = MqttPublisher(broker.account("company", "B-desk"), "B-desk")
    desk = SwitchDesk(DeskCompany("B", "Bでんき", Role.SUPPLY, "mqtt://b.example.jp",
                                  parse_data_types("time,energy"), ("スタンダード", "夜トク")),
                      key=b.key, certificate=b.cert, serials=SerialBook(tmp_path / "b-serial"), publish=publisher,
                      clock=clock, secret=b"test")
    with smtp_server() as box:
        site = Site(tmp_path, smtp=box, clock=clock, desks=[desk])
        site.storage.upsert_registrations([Registration(METER, "C-7001", Area("広島県", "広島市中区", "基町1丁目"), "K1",
                                                        email=EMAIL, name="山田花子", language=Language.JA)])
        collector = Collector(site.storage, clock, flush_interval_s=0.05)
        collector.start(broker.account("operator", "collector"))
        stepper = Stepper(rig)
        try:
            yield rig, site, box, collector
        finally:
            stepper.close()
            collector.stop()
            publisher.close()
            site.close()
            rig.close()


def sign_in_by_mail(page, site, box) -> str:
    page.goto(site.url + "/mypage/signin")
    page.fill("#meter_id", METER)
    page.fill("#customer_number", "C-7001")
    page.click("button[type=submit]")
    page.wait_for_selector("text=メールをご確認ください")
    wait_for(lambda: box.to(EMAIL), what="the sign-in e-mail")
    body = box.to(EMAIL)[-1].get_body().get_content()
    return re.search(r"http://\S+/mypage\?\S+", body).group(0)


def test_a_customer_switches_power_company_and_the_meter_does_it(world, page):
    rig, site, box, collector = world
    link = sign_in_by_mail(page, site, box)
    page.goto(link)
    page.wait_for_selector("#in-force >> text=A社")  # as the meter itself reported it (commissioned as A社)
    shot(page, "mypage-ja-desktop")
    page.select_option("#plan", "B|夜トク")
    page.check("#when-immediate")
    page.click("button[value=offer]")
    # step 2: the company's confirmation; nothing is sent yet
    page.wait_for_selector("#offer")
    assert "Bでんき（電力会社）に切り替えます" in page.inner_text("#offer")
    assert "計量時刻、電力量" in page.inner_text("#offer")
    assert rig.store.change(1) is None
    shot(page, "mypage-confirm-ja-desktop")
    page.click("button[value=accept]")  # steps 3-4
    page.wait_for_selector("#sent")
    # step 5 and the switch itself (after B's confirmation), shown live without reloading the page
    page.wait_for_selector("#in-force >> text=Bでんき", timeout=20_000)
    assert rig.store.supply_contract().company.code == "B" and rig.store.supply_contract().menu == "夜トク"
    ch, _ = rig.store.change(1)
    assert ch.source == "remote" and ch.serial == 1
    assert "A社" not in page.inner_text("#in-force")
    entry = site.storage.audit_entries(1)[0]
    assert entry.action == "remote_switch" and entry.actor == f"customer:{METER}"
    shot(page, "mypage-switched-ja-desktop")


def test_the_form_says_what_is_wrong_and_a_security_error_shows_live(world, page):
    from cloud.outage.notices import security_error

    rig, site, box, collector = world
    page.set_viewport_size({"width": 360, "height": 800})
    page.goto(sign_in_by_mail(page, site, box) + "&lang=en")
    page.select_option("#plan", "B|スタンダード")
    page.check("#when-at")
    page.fill("#at", "2026-11-22T07:00")  # in the past for the meter's clock
    page.click("button[value=offer]")
    assert "at least one minute from now" in page.inner_text("#at-error")
    page.check("#when-weekly")
    page.click("button[value=offer]")
    assert page.inner_text("#days-error") and page.inner_text("#time-error")
    shot(page, "mypage-errors-en-phone")
    assert rig.store.change(1) is None
    security_error(site.storage, METER, "The confirmation data of A did not match.", rig.clock.now(), "t1",
                   rig.clock.now())
    page.wait_for_selector("text=The confirmation data of A did not match.")


def test_a_stranger_learns_nothing_and_a_forged_link_opens_nothing(world, page):
    rig, site, box, collector = world
    page.goto(site.url + "/mypage/signin")
    page.fill("#meter_id", METER)
    page.fill("#customer_number", "C-0000")  # wrong number: the same answer, no e-mail
    page.click("button[type=submit]")
    page.wait_for_selector("text=メールをご確認ください")
    time.sleep(0.3)
    assert box.to(EMAIL) == []
    response = page.goto(site.url + f"/mypage?m={METER}&x=9999999999&t=forged")
    assert response.status == 400 and "Bでんき" not in page.content()


def test_a_hand_made_form_gets_field_errors_and_signs_nothing(tmp_path):
    """A careless or hostile post (odd weekdays, an unknown plan, junk everywhere) is answered with the
    form's own errors, never a server error, and no change is signed."""
    import requests
    from datetime import datetime

    from appliance.clock import JST, ManualClock
    from cloud.outage.mail import Sender
    from cloud.web.mailer import Mailer
    from operators import TEST_KEY

    clock = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=JST))
    root = keys.generate()
    b = certified_company(root, "B", "Bでんき", Role.SUPPLY)
    sent = []
    desk = SwitchDesk(DeskCompany("B", "Bでんき", Role.SUPPLY, "", parse_data_types("time"), ()), key=b.key,
                      certificate=b.cert, serials=SerialBook(tmp_path / "serial"),
                      publish=lambda topic, payload: sent.append(topic), clock=clock, secret=b"t")
    with smtp_server() as box:
        site = Site(tmp_path, smtp=box, clock=clock, desks=[desk])
        try:
            site.storage.upsert_registrations([Registration("SM0000001", "C-1", Area("広島県", "広島市中区", "基町"),
                                                            "K1", email=EMAIL)])
            mailer = Mailer(Sender(TEST_KEY), site.url)
            expires, token = mailer.mypage_links.sign(f"SM0000001|{EMAIL}", clock.now())
            link = {"m": "SM0000001", "x": str(expires), "t": token}
            for form in ({"plan": "B|", "when": "weekly", "days": ["", "12", "-1", "x" * 5000], "time": "07:00"},
                         {"plan": "Z|", "when": "immediate"}, {"plan": "B|", "when": "at", "at": "2026-13-45T99:99"},
                         {"plan": "B|", "when": "sometime"}, {"action": "accept", "company": "B", "offer": "x.y"}):
                r = requests.post(site.url + "/mypage/switch", data={**link, "action": "offer", **form},
                                  headers={"Origin": site.url}, timeout=10)
                assert r.status_code == 400 and "field-error" in r.text or "確認の内容" in r.text, (form, r.status_code)
            assert sent == []
        finally:
            site.close()
