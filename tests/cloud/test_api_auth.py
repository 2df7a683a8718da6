"""The outage manager's API lets no one in without an operator's account: anonymous and viewer writes
are refused and change nothing, a client that keeps guessing is turned away, and the customer's
unsubscribe link works only as signed, for its own meter, until it expires. The handlers' key is
made at first start (0600) and refused when others may read it."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta

import pytest
from operators import TEST_KEY
from receivers import ApiRig

from cloud.outage.api_auth import MAX_FAILURES, basic_header
from cloud.outage.mail import Sender
from cloud.secrets import load_or_create_key

REGISTRATION = {"meter_id": "SM1", "customer_number": "C1", "concentrator_id": "K1",
                "area": "広島県/広島市中区/基町", "email": "taro@example.jp", "name": "山田太郎", "language": "ja"}
WRITES = {
    "/da": {"area": "広島県/広島市中区/基町", "kind": "outage", "at": "2026-11-23T10:00:00+09:00"},
    "/planned": {"area": "広島県/広島市中区/基町", "start": "2026-11-24T10:00:00+09:00",
                 "end": "2026-11-24T12:00:00+09:00", "reason": "construction"},
    "/registrations": [{**REGISTRATION, "email": "attacker@example.com"}],
    "/security_errors": {"meter_id": "SM1", "detail": "x", "at": "2026-11-23T10:00:00+09:00"},
    "/outages/1": {"response_status": "investigating"},
}


@pytest.fixture
def rig(tmp_path):
    r = ApiRig(tmp_path / "outage.db")
    assert r.post("/registrations", [REGISTRATION])[0] == 200
    yield r
    r.close()


@pytest.mark.parametrize("path", sorted(WRITES))
def test_anonymous_and_viewer_writes_are_refused_and_change_nothing(rig, path):
    status, body = rig.post(path, WRITES[path], headers={})
    assert status == 401 and "operator" in body["error"]
    assert rig.post(path, WRITES[path], headers={"Authorization": basic_header("ops", "wrong-password!")})[0] == 401
    assert rig.post(path, WRITES[path], headers=rig.viewer)[0] == 403
    assert rig.storage.registration("SM1").email == "taro@example.jp"  # no one changed the customer's address
    assert rig.storage.outages(open_only=False) == []


def test_reads_need_an_account_and_a_viewer_may_read(rig):
    assert rig.call("GET", "/outages", headers={})[0] == 401
    assert rig.call("GET", "/outages", headers=rig.viewer) == (200, [])
    assert rig.call("GET", "/meters/SM1", headers=rig.operator)[0] == 404  # read allowed: no outage for it


def test_a_client_that_keeps_guessing_is_turned_away_unchecked(rig):
    wrong = {"Authorization": basic_header("ops", "guess")}
    for _ in range(MAX_FAILURES):
        assert rig.call("GET", "/areas", headers=wrong)[0] == 401
    assert rig.call("GET", "/areas", headers=rig.operator)[0] == 429  # even a good password waits


def test_the_unsubscribe_link_works_only_as_signed_for_its_meter_until_it_expires(rig):
    sender = Sender(TEST_KEY)
    link = sender.unsubscribe_url("SM1", rig.clock.now())
    path = link[link.index("/unsubscribe"):]
    assert "expires=" in path and "token=" in path
    forged = Sender(b"another-key-that-is-not-the-servers-00").unsubscribe_url("SM1", rig.clock.now())
    expired = sender.unsubscribe_url("SM1", rig.clock.now() - sender.link_lifetime - timedelta(minutes=1))
    lengthened = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 86400 * 365}", path)
    for bad in (forged, expired):
        assert rig.call("GET", bad[bad.index("/unsubscribe"):], headers={})[0] == 403
    assert rig.call("GET", lengthened, headers={})[0] == 403
    assert rig.call("GET", path.replace("SM1", "SM2"), headers={})[0] == 403
    assert not rig.storage.registration("SM1").unsubscribed
    assert rig.call("GET", path, headers={})[0] == 200  # the customer's own link needs no login
    assert rig.storage.registration("SM1").unsubscribed


def test_a_sender_cannot_be_made_without_a_real_key():
    with pytest.raises(TypeError):
        Sender()  # no default key exists
    with pytest.raises(ValueError, match="signing key"):
        Sender(b"change-me")


def test_the_key_is_made_private_at_first_start_and_refused_when_others_may_read_it(tmp_path):
    path = tmp_path / "state" / "outage-secret.key"
    key = load_or_create_key(path)
    assert len(key) >= 32 and (path.stat().st_mode & 0o777) == 0o600
    assert load_or_create_key(path) == key  # the same key at the next start: links stay valid
    os.chmod(path, 0o644)
    result = subprocess.run([sys.executable, "-m", "smartmeter.cli", "cloud", "notifier", "--db",
                             f"sqlite:///{tmp_path / 'o.db'}", "--secret-file", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and f"chmod 600 {path}" in result.stderr


def test_the_manager_listens_on_this_host_only_by_default():
    text = subprocess.run([sys.executable, "-m", "smartmeter.cli", "cloud", "manager", "--help"],
                          capture_output=True, text=True, timeout=30).stdout
    assert "default 127.0.0.1:8080" in text and "--secret " not in text and "change-me" not in text


def test_a_registration_change_by_an_operator_goes_through(rig):
    new = {**REGISTRATION, "email": "hanako@example.jp"}
    assert rig.post("/registrations", [new])[0] == 200
    assert rig.storage.registration("SM1").email == "hanako@example.jp"
