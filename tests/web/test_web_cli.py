"""``smartmeter cloud web`` as an operator starts it: a process of its own, with a company's switching
desk from its directory (key, certificate, the desk's own broker account), serving the customer's page."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit

from cardkit import certified_company  # noqa: E402
from polling import wait_for  # noqa: E402

from appliance.clock import SystemClock  # noqa: E402
from appliance.datatypes import parse_data_types  # noqa: E402
from appliance.domain import Role  # noqa: E402
from appliance.trust import keys  # noqa: E402
from cloud.outage.mail import Sender  # noqa: E402
from cloud.outage.model import Area, Language, Registration  # noqa: E402
from cloud.outage.storage import open_storage  # noqa: E402
from cloud.secrets import load_or_create_key  # noqa: E402
from cloud.switch_desk import DeskCompany, write_desk  # noqa: E402
from cloud.web.mailer import Mailer  # noqa: E402
from devkit.ports import free_port  # noqa: E402


def test_the_web_command_serves_a_desk_from_its_directory(tmp_path, broker):
    b = certified_company(keys.generate(), "B", "Bでんき", Role.SUPPLY)
    desk = tmp_path / "desk-B"
    write_desk(desk, DeskCompany("B", "Bでんき", Role.SUPPLY, "mqtt://b", parse_data_types("time,energy"), ("夜トク",)),
               b.key, b.cert)
    party = broker.party_file("company", "B-desk")
    shutil.copy(party, desk / "mqtt.toml")
    for extra in party.parent.glob("B-desk.*"):  # the password file and any TLS files the settings name
        shutil.copy(extra, desk / extra.name)
    db = f"sqlite:///{tmp_path / 'outage.db'}"
    storage = open_storage(db)
    storage.upsert_registrations([Registration("SM0000001", "C-1", Area("広島県", "広島市中区", "基町"), "K1",
                                               email="a@example.jp")])
    storage.close()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "smartmeter.cli", "cloud", "web", "--db", db, "--listen", f"127.0.0.1:{port}",
         "--accounts", str(tmp_path / "operators.json"), "--secret-file", str(tmp_path / "secret.key"),
         "--desk", str(desk)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(url) or proc.poll() is not None, timeout=20, what="the web command serving")
        assert proc.poll() is None, proc.communicate()[0]
        key = load_or_create_key(tmp_path / "secret.key")
        mailer = Mailer(Sender(key), url)
        link, _ = mailer.link("/mypage", mailer.mypage_links, "SM0000001", "a@example.jp", Language.JA,
                              SystemClock().now())
        page = requests.get(link, timeout=5)
        assert page.status_code == 200 and "Bでんき：夜トク" in page.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert "Traceback" not in out, out


def _up(url: str) -> bool:
    try:
        return requests.get(url + "/mypage/signin", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
