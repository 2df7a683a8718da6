"""The cloud handlers on a broker set up as `smartmeter broker init` sets one up (with and without
mutual TLS): each works with its own account, a party that may not write a topic reaches no handler
through it, and a refused handler says why and exits non-zero."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from polling import wait_for as wait_until

from appliance.clock import SystemClock, iso
from cloud.company_server import CompanyServer
from cloud.mqtt import BrokerRefused, connect, disconnect, make_client
from cloud.outage.collector import Collector
from cloud.outage.da_feed import DaFeed
from cloud.outage.storage import open_storage
from devkit.mosquitto import LocalMosquitto

PERIOD = timedelta(minutes=30)


@pytest.fixture(params=[False, True], ids=["password", "tls"])
def secure_broker(request, tmp_path):
    with LocalMosquitto(workdir=tmp_path / "mosquitto", tls=request.param) as b:
        yield b


def reading(meter: str, seq: int) -> dict:
    end = SystemClock().now().replace(microsecond=0) - timedelta(minutes=1)
    return {"meter_id": meter, "seq": seq, "interval_start": iso(end - PERIOD), "interval_end": iso(end),
            "power_w": 420.0, "energy_wh": 210.0}


def party(broker, kind: str, name: str):
    """A connected client of party ``name``."""
    settings = broker.account(kind, name)
    client = make_client(settings)
    connect(client, settings)
    return client


def send(client, topic: str, payload: dict) -> None:
    client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)


def attempt(broker, kind: str, name: str, topic: str, payload: dict) -> None:
    """Publish as party ``name`` where its ACL does not allow it, on a connection of its own: the
    broker drops the message (and may drop the connection)."""
    client = party(broker, kind, name)
    try:
        client.publish(topic, json.dumps(payload), qos=1).wait_for_publish(2)
    except RuntimeError:
        pass
    finally:
        disconnect(client)


def test_each_handler_works_on_its_own_account_and_a_forged_last_gasp_reaches_none(secure_broker, tmp_path):
    broker = secure_broker
    storage = open_storage(f"sqlite:///{tmp_path / 'outage.db'}")
    collector = Collector(storage, SystemClock(), flush_interval_s=0.05)
    collector.start(broker.account("operator", "collector"))
    company = CompanyServer("A", broker.account("company", "A"), tmp_path / "a.sqlite3").start()
    assert company.connected.wait(10)
    feed = DaFeed(manager=None)  # only counts here: nothing valid is sent to it
    feed.start(broker.account("operator", "da-feed"))
    meter = party(broker, "meter", "M1")
    try:
        # company B's account may only write commands: its fake last gasp and reading never reach a handler
        for topic, payload in (("meters/M1/status", {"state": "power_fail", "at": iso(SystemClock().now())}),
                               ("meters/M1/interval", reading("M1", 99)),
                               ("companies/A/meters/M1/data", {"meter_id": "M1", "company_code": "A", "seq": 99}),
                               ("grid/da/events", {"kind": "outage"})):
            attempt(broker, "company", "B", topic, payload)
        # nor can a meter write as another meter
        attempt(broker, "meter", "M2", "meters/M1/status", {"state": "power_fail", "at": iso(SystemClock().now())})
        # an anonymous client cannot even connect
        with pytest.raises(BrokerRefused, match="refused an anonymous client: (the broker refused|.*want TLS)"):
            connect(make_client(broker.endpoint()), broker.endpoint())
        # the meter's genuine traffic reaches the handlers on their own accounts
        send(meter, "meters/M1/interval", reading("M1", 1))
        send(meter, "companies/A/meters/M1/data", {"meter_id": "M1", "company_code": "A", "seq": 1, "power_w": 420.0})
        wait_until(lambda: storage.reading_count() == 1, what="the genuine reading stored")
        wait_until(lambda: len(company.data()) == 1, what="company A received")
        collector.flush()
        assert collector.stats.statuses == 0 and collector.stats.messages == 1
        assert storage.reading_keys() == [("M1", 1)]
        assert feed.received == 0
        assert [d["seq"] for d in company.data()] == [1] and company.rejected() == []
    finally:
        disconnect(meter)
        feed.stop()
        company.stop()
        collector.stop()


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartmeter.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_a_handler_refused_by_the_broker_says_why_and_exits_non_zero(broker, tmp_path):
    config = broker.party_file("operator", "collector")
    secret = config.parent / "collector.secret"
    secret.write_text("not-the-password\n")
    result = run_cli("cloud", "collector", "--db", f"sqlite:///{tmp_path / 'o.db'}", "--mqtt-config", str(config))
    assert result.returncode != 0
    assert "refused collector" in result.stderr and "user name or password" in result.stderr
    company = run_cli("cloud", "company", "--code", "A", "--db", str(tmp_path / "a.sqlite3"),
                      "--mqtt", f"{broker.host}:{broker.port}")
    assert company.returncode != 0 and "refused an anonymous client" in company.stderr


def test_a_secret_readable_by_others_is_refused_with_the_fix(broker, tmp_path):
    config = broker.party_file("operator", "collector")
    secret = config.parent / "collector.secret"
    os.chmod(secret, 0o644)
    result = run_cli("cloud", "collector", "--db", f"sqlite:///{tmp_path / 'o.db'}", "--mqtt-config", str(config))
    assert result.returncode == 2
    assert f"chmod 600 {secret}" in result.stderr


def test_no_cloud_command_takes_a_password_on_its_command_line():
    for command in (["cloud", "collector"], ["cloud", "manager"], ["cloud", "company"], ["sim", "fleet"]):
        text = run_cli(*command, "--help").stdout
        assert "--mqtt-config" in text and "--password " not in text and "--password\n" not in text, command
