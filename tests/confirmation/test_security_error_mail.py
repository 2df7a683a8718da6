"""JP5159864B2 embodiment 4: a security error "is transmitted to the customer's mobile phone". The
meter's alert goes out on meters/{id}/alerts, the grid operator's collector takes it, and the
notifier e-mails the registered customer once, in their language, through a real SMTP server."""
from __future__ import annotations

from datetime import timedelta

from aiosmtpd.controller import Controller
from gpiozero.pins.mock import MockFactory
from meter_rig import METER
from operators import TEST_KEY
from polling import wait_for
from test_confirmation import RECORDS, breaker_on, commission, drain, run_settled

from cloud.outage.collector import Collector
from cloud.outage.mail import Sender
from cloud.outage.model import Area, Language, Registration
from cloud.outage.notifier import Notifier, NotifierConfig
from cloud.outage.storage import open_storage
from devkit.ports import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos[0], envelope.content))
        return "250 OK"


def test_a_security_error_reaches_the_registered_customer_by_e_mail_once(make_rig, tmp_path, broker):
    storage = open_storage(f"sqlite:///{tmp_path / 'outage.db'}")
    storage.upsert_registrations([Registration(METER, "C-001", Area("広島県", "広島市中区", "基町"), "K1",
                                               email="taro@example.jp", name="山田太郎", language=Language.JA)])
    rig = make_rig(records=RECORDS, answers={"A": "wrong"}, breaker=breaker_on(tmp_path, MockFactory()),
                   recheck_after=timedelta(hours=6))
    collector = Collector(storage, rig.clock, flush_interval_s=0.05)
    collector.start(broker.account("operator", "collector"))
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        commission(rig)
        run_settled(rig, 3)  # the power company's spoofed answer: a security error, breaker open
        drain(rig)
        wait_for(lambda: collector.stats.alerts >= 1, what="the meter's alert at the collector")
        collector.flush()
        notifier = Notifier(storage, rig.clock, NotifierConfig(Sender(TEST_KEY), smtp_host="127.0.0.1",
                                                               smtp_port=smtp.port, quiet_start=None, quiet_end=None))
        while notifier.run_once():
            pass
        [(to, raw)] = inbox.messages
        text = raw.decode("utf-8", "replace")
        assert to == "taro@example.jp"
        from email import message_from_bytes, policy

        body = message_from_bytes(raw, policy=policy.default).get_body().get_content()
        assert "セキュリティエラー" in body and "Aの契約確認データ" in body and "電気を止めています" in body
        assert "Subject" in text
        # the same alert counted again on the meter, or redelivered, is not e-mailed twice
        run_settled(rig, 2)
        drain(rig)
        collector.flush()
        while notifier.run_once():
            pass
        assert len(inbox.messages) == 1
    finally:
        smtp.stop()
        collector.stop()
        storage.close()
