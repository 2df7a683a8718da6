"""The web side of ``smartmeter demo``: the outage service's pages on the emulated system.

Beside the emulated meter, the demo runs what a utility runs for it, on embedded defaults: the outage
store (SQLite in the work directory) with the demo meter registered to a household, the collector
(readings, alerts and the meter's contracts from the private broker), every example company's
switching desk (each under its own broker account, signing with the company's certified key), a
local SMTP server that keeps every e-mail in a maildir, and the web pages. An operator account with a
fresh random password is created for the operations site; the household's page opens from a signed
link, as the sign-in e-mail would give it.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .emulation import EmulatedSystem

log = logging.getLogger(__name__)

DEMO_CUSTOMER = "0123-4567-89"
DEMO_EMAIL = "household@example.jp"
OPERATOR = "demo-operator"


class WebNotStarted(RuntimeError):
    pass


@dataclass
class DemoWeb:
    system: EmulatedSystem
    port: int
    url: str = ""
    operator_password: str = ""
    customer_link: str = ""
    _stops: list[Any] = field(default_factory=list)

    def start(self) -> DemoWeb:
        import uvicorn
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        from appliance.clock import SystemClock
        from cloud.accounts import Accounts
        from cloud.outage.collector import Collector, Timing
        from cloud.outage.mail import Sender
        from cloud.outage.manager import OutageManager
        from cloud.outage.model import Area, Language, Registration
        from cloud.outage.storage import open_storage
        from cloud.secrets import load_or_create_key
        from cloud.switch_desk import MqttPublisher, SerialBook, SwitchDesk
        from cloud.web.app import create_app
        from cloud.web.mailer import Mailer
        from devkit.ports import free_port

        system, work = self.system, self.system.workdir
        clock, wall = system.clock, SystemClock()  # the meter's (simulated) time; the household's own
        key = load_or_create_key(work / "handlers.key")
        self.storage = storage = open_storage(f"sqlite:///{work / 'outage.db'}")
        storage.upsert_registrations([Registration(
            system.meter_id, DEMO_CUSTOMER, Area("広島県", "広島市中区", "基町"), "CN-DEMO", email=DEMO_EMAIL,
            name="山田 花子", language=Language.JA, street="1-2 基町ハイツ101", postal_code="7300011")])
        accounts = Accounts(work / "operators.json")
        self.operator_password = secrets.token_urlsafe(12)
        accounts.add(OPERATOR, "operator", self.operator_password)

        collector = Collector(storage, clock, Timing(period=system.interval), flush_interval_s=0.2)
        collector.start(system.broker.account("operator", "demo-collector"))
        self._stops.append(collector.stop)
        desks = []
        for c in system.companies:
            company_key, cert = system.company_keys[c.code]
            publisher = MqttPublisher(system.broker.account("company", f"{c.code}-desk"), f"{c.code}-desk")
            self._stops.append(publisher.close)
            desks.append(SwitchDesk(system.desk_company(c), key=company_key, certificate=cert,
                                    serials=SerialBook(work / f"desk-{c.code}.serial"), publish=publisher,
                                    clock=clock, secret=key, offer_clock=wall))
        logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-connection chatter
        (work / "mail").mkdir(exist_ok=True)
        smtp = Controller(Mailbox(str(work / "mail")), hostname="127.0.0.1", port=free_port())
        smtp.start()
        self._stops.append(smtp.stop)
        self.url = f"http://127.0.0.1:{self.port}"
        mailer = Mailer(Sender(key, public_url=self.url), self.url, "127.0.0.1", smtp.port)
        app = create_app(storage, wall, key=key, accounts=accounts, manager=OutageManager(storage, wall),
                         mailer=mailer, desks=desks, live_poll_s=1.0)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, name="web", daemon=True)
        thread.start()
        self._stops.insert(0, lambda: (setattr(server, "should_exit", True), thread.join(10)))
        deadline = time.monotonic() + 15
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                self.stop()
                raise WebNotStarted(f"the web pages could not start on 127.0.0.1:{self.port}: the port is in use "
                                    f"(choose another with --web-port, or --no-web)")
            time.sleep(0.05)
        self.customer_link = mailer.link("/mypage", mailer.mypage_links, system.meter_id, DEMO_EMAIL, Language.JA,
                                         wall.now())[0]
        self.mail_dir: Path = work / "mail"
        return self

    def banner(self) -> str:
        return (f"Web pages (outage information, registration): {self.url}/\n"
                f"  The household's page (contracts, switching power company): {self.customer_link}\n"
                f"  Operations: {self.url}/ops/  user {OPERATOR}  password {self.operator_password}\n"
                f"  E-mails the site sends are kept in {self.mail_dir}/new")

    def stop(self) -> None:
        for stop in self._stops:
            try:
                stop()
            except Exception:  # stopping the demo goes on whatever one part says
                log.debug("demo: stopping a part failed", exc_info=True)
        self.storage.close()
