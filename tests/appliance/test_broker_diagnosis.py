"""Why the meter cannot reach its broker, in words: a real Mosquitto with mutual TLS made by
`smartmeter broker init`, and the meter's settings broken in turn."""
from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pytest

from appliance.mqtt_settings import diagnose_connect
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


def test_a_certificate_from_another_ca_is_refused(tls_broker, tmp_path):
    CertificateAuthority(tmp_path / "rogue").issue(tmp_path, "M1")
    m = msgspec.structs.replace(tls_broker.settings("M1"), cert_file=tmp_path / "M1.crt", key_file=tmp_path / "M1.key")
    assert "refused this meter's certificate" in diagnose_connect("localhost", tls_broker.port, m)


def test_an_unreachable_broker_is_named(tls_broker):
    assert "cannot reach" in diagnose_connect("127.0.0.1", free_port(), tls_broker.settings("M1"))
