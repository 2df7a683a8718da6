"""`smartmeter broker init`: a real Mosquitto with the accounts and ACLs of interfaces.md section 2,
with and without mutual TLS. Each party connects with the settings file the command wrote for it."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import msgspec
import paho.mqtt.client as paho
import pytest

from appliance.config import load_mqtt_config
from appliance.errors import ConfigError
from appliance.mqtt_settings import apply_settings
from cloud.broker import BrokerDir, BrokerSetup, Party
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port

PARTIES = (Party("meter", "M1"), Party("meter", "M2"), Party("company", "A"), Party("company", "B"),
           Party("operator", "collector"))


class Client:
    """One party's connection; what it receives, by topic."""

    def __init__(self, folder: Path, name: str | None, client_id: str | None = None, settings=None):
        self.got: list[tuple[str, bytes]] = []
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or name or "anon",
                                  protocol=paho.MQTTv5)
        self.client.on_message = lambda _c, _u, m: self.got.append((m.topic, m.payload))
        self.refused = None
        self.client.on_connect = lambda _c, _u, _f, rc, _p: setattr(self, "refused", None if rc == 0 else str(rc))
        self.connected = False
        self.client.on_disconnect = lambda *a: setattr(self, "connected", False)
        m = settings or (load_mqtt_config(folder / "parties" / f"{name}.toml") if name else None)
        if m is not None:
            apply_settings(self.client, m)
        setup = BrokerDir(folder).load()
        self.client.connect("127.0.0.1" if not setup.tls else "localhost", setup.port)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not self.client.is_connected() and self.refused is None:
            time.sleep(0.02)
        self.connected = self.client.is_connected()

    def sub(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.2)

    def pub(self, topic: str, payload: bytes = b"{}") -> None:
        self.client.publish(topic, payload, qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture(params=[False, True], ids=["password", "tls"])
def broker_dir(request, tmp_path):
    """A Mosquitto set up by BrokerDir (as `smartmeter broker init` does) for PARTIES; yields its folder."""
    with LocalMosquitto(workdir=tmp_path / "mosquitto", parties=PARTIES, tls=request.param) as broker:
        yield broker.workdir / "broker"


def test_each_party_reads_and_writes_only_what_section_2_allows(broker_dir):
    m1, m2, a, b, op = (Client(broker_dir, n) for n in ("M1", "M2", "A", "B", "collector"))
    try:
        assert all(c.connected for c in (m1, m2, a, b, op))
        a.sub("companies/B/#")  # another company's data
        a.sub("meters/+/commands")  # meters' commands
        a.sub("meters/+/interval")
        b.sub("companies/B/#")
        m1.sub("meters/M2/commands")  # another meter's commands
        m2.sub("meters/M2/commands")
        op.sub("meters/+/interval")
        op.sub("meters/+/status")
        m1.pub("companies/B/meters/M1/data", b'{"seq": 1}')  # allowed: reaches B only
        b.pub("meters/M2/commands", b'{"type": "confirm"}')  # allowed: reaches M2 only
        m1.pub("meters/M1/interval", b'{"seq": 1}')  # allowed: reaches the operator
        time.sleep(1.0)
        assert [t for t, _ in b.got] == ["companies/B/meters/M1/data"]
        assert [t for t, _ in m2.got] == ["meters/M2/commands"]
        assert op.got == [("meters/M1/interval", b'{"seq": 1}')]
        # what each party may not do: refused by the broker (a refused publish may also cost the
        # sender its connection), and received by no one
        a.pub("meters/M1/interval", b'{"forged": "by A"}')  # a company posing as a meter
        a.pub("meters/M1/status", b'{"state": "power_fail"}')
        m1.pub("meters/M2/interval", b'{"forged": "as M2"}')  # a meter posing as another
        m1.pub("companies/B/meters/M2/data", b'{"forged": "as M2"}')
        time.sleep(1.0)
        assert a.got == [] and m1.got == []
        assert len(b.got) == 1 and len(m2.got) == 1 and len(op.got) == 1
    finally:
        for c in (m1, m2, a, b, op):
            c.close()


def test_anonymous_and_forged_accounts_are_refused(broker_dir):
    anon = Client(broker_dir, None)  # no account (and with TLS, no certificate either)
    assert not anon.connected
    wrong = msgspec.structs.replace(load_mqtt_config(broker_dir / "parties" / "A.toml"), password="not-the-password")
    bad = Client(broker_dir, None, client_id="A", settings=wrong)
    assert not bad.connected and bad.refused


def test_a_client_id_cannot_take_over_another_partys_session(broker_dir):
    m1 = Client(broker_dir, "M1")
    try:
        intruder = Client(broker_dir, "A", client_id="M1")  # the broker makes its client id "A"
        time.sleep(0.5)
        assert m1.client.is_connected() and intruder.connected
        intruder.close()
    finally:
        m1.close()


def test_secrets_are_private_and_a_readable_one_is_refused(broker_dir):
    for name in ("passwd", "acl", "parties/A.secret"):
        assert stat.S_IMODE((broker_dir / name).stat().st_mode) == 0o600, name
    secret = broker_dir / "parties" / "A.secret"
    secret.chmod(0o644)
    with pytest.raises(ConfigError, match=r"readable by others.*chmod 600"):
        load_mqtt_config(broker_dir / "parties" / "A.toml")


def test_broker_add_adds_a_party_that_can_connect_after_a_reload(broker_dir, tmp_path):
    BrokerDir(broker_dir).add((Party("meter", "M3"),))
    assert "user M3" in (broker_dir / "acl").read_text()
    assert json.loads((broker_dir / "broker.json").read_text())["parties"][-1] == {"kind": "meter", "name": "M3"}
    with pytest.raises(ConfigError, match="already an account"):
        BrokerDir(broker_dir).add((Party("company", "M3"),))


def test_an_account_added_to_a_running_broker_works_after_its_reload(tmp_path):
    with LocalMosquitto(workdir=tmp_path / "m", parties=(Party("operator", "collector"),)) as broker:
        late = broker.account("meter", "LATE-1")
        op = Client(broker.workdir / "broker", "collector")
        op.sub("meters/+/interval")
        meter = Client(broker.workdir / "broker", None, client_id="LATE-1", settings=late)
        assert meter.connected
        meter.pub("meters/LATE-1/interval", b"{}")
        time.sleep(0.5)
        assert op.got == [("meters/LATE-1/interval", b"{}")]
        op.close()
        meter.close()


@pytest.fixture
def etc():
    """A folder other users may pass through, as /etc is (pytest's own folders are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="etc-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("mosquitto"), reason="needs root and mosquitto")
def test_a_broker_folder_made_by_root_runs_under_mosquittos_own_user(etc):
    """As the README has an installer do it: `broker init` as root, then `mosquitto -c` as root, which
    drops to the mosquitto user before it reads the password, ACL and key files."""
    folder = etc / "broker"
    BrokerDir(folder).init(BrokerSetup(free_port(), "localhost", "127.0.0.1", True, PARTIES))
    broker = subprocess.Popen(["mosquitto", "-c", str(folder / "mosquitto.conf")], stderr=subprocess.PIPE)
    try:
        meter = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (meter and meter.connected) and broker.poll() is None:
            meter = Client(folder, "M1") if _listening(BrokerDir(folder).load().port) else None
            time.sleep(0.1)
        assert broker.poll() is None, broker.stderr.read().decode()
        assert meter is not None and meter.connected
        meter.close()
    finally:
        broker.terminate()
        broker.wait(10)
    owner = pwd.getpwnam("mosquitto").pw_uid
    brokers = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.stat().st_uid == owner}
    assert {"passwd", "acl", "tls/broker.key", "state"} <= brokers <= {"passwd", "acl", "tls/broker.key", "state",
                                                                     "state/mosquitto.db"}
    assert all(p.stat().st_uid == 0 and stat.S_IMODE(p.stat().st_mode) == 0o600
               for p in (folder / "parties").iterdir() if p.suffix in (".secret", ".key"))


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
