"""Why the meter cannot reach its broker, in words: a real Mosquitto with mutual TLS made by
`smartmeter broker init`, and the meter's settings broken in turn."""
from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pytest

from appliance.mqtt_settings import diagnose, diagnose_connect
from appliance.uplink import LinkProblem
from cloud.broker import Party
from cloud.pki import CertificateAuthority
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    with LocalMosquitto(workdir=tmp_path_factory.mktemp("tls") / "b", parties=(Party("meter", "M1"),), tls=True) as b:
        yield b


def test_good_settings_pass_tls(tls_broker):
    m = tls_broker.settings("M1")
    assert "works" in diagnose_connect("localhost", tls_broker.port, m)


def test_an_unknown_ca_is_named(tls_broker, tmp_path):
    other = CertificateAuthority(tmp_path / "other")
    m = msgspec.structs.replace(tls_broker.settings("M1"), ca_file=other.cert_path)
    assert "broker's certificate was refused" in diagnose_connect("localhost", tls_broker.port, m)


def test_an_expired_meter_certificate_is_named(tls_broker, tmp_path):
    ca = CertificateAuthority(tls_broker.workdir / "broker" / "tls", now=datetime(2020, 1, 1, tzinfo=timezone.utc),
                              days=1)
    ca.issue(tmp_path, "M1")
    (tmp_path / "M1.key").chmod(0o600)
    m = msgspec.structs.replace(tls_broker.settings("M1"), cert_file=tmp_path / "M1.crt", key_file=tmp_path / "M1.key")
    assert "expired" in diagnose_connect("localhost", tls_broker.port, m)
    assert diagnose("localhost", tls_broker.port, m)[0] is LinkProblem.CERT_EXPIRED


def test_a_certificate_from_another_ca_is_refused(tls_broker, tmp_path):
    CertificateAuthority(tmp_path / "rogue").issue(tmp_path, "M1")
    m = msgspec.structs.replace(tls_broker.settings("M1"), cert_file=tmp_path / "M1.crt", key_file=tmp_path / "M1.key")
    assert "refused this meter's certificate" in diagnose_connect("localhost", tls_broker.port, m)


def test_an_unreachable_broker_is_named(tls_broker):
    assert "cannot reach" in diagnose_connect("127.0.0.1", free_port(), tls_broker.settings("M1"))
    assert diagnose("127.0.0.1", free_port(), tls_broker.settings("M1"))[0] is LinkProblem.UNREACHABLE


def _meter_status(tmp_path, broker, mqtt_lines: str) -> dict:
    """A meter assembled from a config whose [mqtt] is ``mqtt_lines``; stepped until its link settles;
    then what `smartmeter appliance status` prints."""
    import json
    import subprocess
    import sys
    import time

    from appliance.clock import SystemClock
    from appliance.config import load_config
    from drivers.modbus.emulator import ChipEmulator
    from drivers.modbus.profiles import get_profile
    from smartmeter.assembly import build_meter

    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    port = emulator.start_tcp()
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "meter.toml"
    config.write_text(f'[meter]\nid = "M1"\nstore = "meter.sqlite3"\n[chip]\nprofile = "sdm120"\n'
                      f'tcp = "127.0.0.1:{port}"\n{mqtt_lines}')
    meter = build_meter(load_config(config), SystemClock()).start()
    try:
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:
            meter.service.step()
            if meter.uplink.state().connected or "refused" in meter.uplink.state().detail:
                break
            time.sleep(0.2)
        meter.service.step()
    finally:
        meter.close()
        emulator.stop()
    out = subprocess.run([sys.executable, "-m", "smartmeter.cli", "appliance", "status", "--json", "--config",
                          str(config)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["link"]


def test_the_meter_over_tls_and_what_appliance_status_says_when_it_cannot(tls_broker, tmp_path):
    party = (tls_broker.workdir / "broker" / "parties" / "M1.toml").read_text()
    party = party.replace('"M1.', f'"{tls_broker.workdir}/broker/parties/M1.').replace(
        '"../tls/', f'"{tls_broker.workdir}/broker/tls/')
    party_body = party.split("[mqtt]", 1)[1]
    assert _meter_status(tmp_path / "good", tls_broker, "[mqtt]" + party_body)["connected"] is True

    other = CertificateAuthority(tmp_path / "other")
    lines = "[mqtt]" + party_body.replace(f"{tls_broker.workdir}/broker/tls/ca.crt", str(other.cert_path))
    link = _meter_status(tmp_path / "ca", tls_broker, lines)
    assert not link["connected"] and "broker's certificate was refused" in link["detail"]
    assert link["problem"] == "server_cert_refused"  # the kind the touch screen explains

    secret = tmp_path / "wrong.secret"
    secret.write_text("not-the-password\n")
    secret.chmod(0o600)
    lines = "[mqtt]" + party_body.replace(f"{tls_broker.workdir}/broker/parties/M1.secret", str(secret))
    link = _meter_status(tmp_path / "pw", tls_broker, lines)
    assert not link["connected"] and "refused the connection" in link["detail"]
    assert link["problem"] == "account_refused"
