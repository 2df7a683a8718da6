"""Helpers of the web tests (imported by name, so no test depends on which conftest loaded first):
the web pages on real components: the outage store and manager, a real uvicorn server on a free
port, and Debian's Chromium driven by Playwright (headless, no sandbox as root, nothing from the
internet). Screenshots go to artifacts/screenshots/web/."""
from __future__ import annotations

import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

from appliance.clock import JST, ManualClock
from devkit.ports import free_port
from operators import OPERATOR, TEST_KEY, VIEWER, operator_accounts

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots" / "web"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Site:
    """The outage store with a fleet registered, its manager, and the web app served over HTTP."""

    def __init__(self, tmp_path: Path, smtp=None, clock=None, desks=()) -> None:
        """``smtp``: a :class:`smtp_sink.Mailbox` the site's own e-mail (registration) goes to; ``clock``: the
        site's time (default a manual clock at 2026-11-23 10:00 JST); ``desks``: companies' switching desks."""
        import uvicorn

        from cloud.outage.mail import Sender
        from cloud.outage.manager import OutageManager
        from cloud.outage.storage import open_storage
        from cloud.outage.topology import FleetSpec, area_of, registrations
        from cloud.web.app import create_app
        from cloud.web.mailer import Mailer

        self.clock = clock or ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=JST))
        self.storage = open_storage(f"sqlite:///{tmp_path / 'outage.db'}")
        self.spec = FleetSpec(meters=120, area_size=20, concentrators_per_area=2)
        self.storage.upsert_registrations(registrations(self.spec))
        self.manager = OutageManager(self.storage, self.clock)
        self.area = area_of
        self.port = free_port()
        accounts, _, _ = operator_accounts(tmp_path)
        self.url = f"http://127.0.0.1:{self.port}"
        mailer = Mailer(Sender(TEST_KEY), self.url, smtp.host, smtp.port) if smtp else None
        app = create_app(self.storage, self.clock, key=TEST_KEY, accounts=accounts, manager=self.manager, live_poll_s=0.3,
                         mailer=mailer, desks=desks)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the web server did not start")
            time.sleep(0.05)

    def area_outage(self, index: int, homes: int | None = None):
        """Distribution automation declares an outage in area ``index``; with ``homes``, that many of its
        meters have since fallen silent (as the manager counts them: recorded here directly)."""
        from cloud.outage.model import DaEvent

        outage = self.manager.report_da(DaEvent(self.area(index), "outage", self.clock.now(), "test"))
        if homes is not None:
            outage.current_count = outage.peak_count = homes
            self.storage.save_outage(outage)
        return outage

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.storage.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, site, who=OPERATOR) -> None:
    page.goto(site.url + "/ops/login")
    page.fill("#name", who[0])
    page.fill("#password", who[1])
    page.click("button[type=submit]")
    page.wait_for_url(site.url + "/ops/")


VIEWER_LOGIN = VIEWER
