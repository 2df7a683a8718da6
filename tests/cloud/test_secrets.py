"""The cloud side's secrets: a key made at first start (0600, refused if others may read it), signed
links that expire and cannot be reused for another subject, and operators' hashed passwords."""
from __future__ import annotations

import stat
from datetime import datetime, timedelta

import pytest

from appliance.clock import JST
from appliance.errors import ConfigError
from cloud.accounts import Accounts, check_password, hash_password
from cloud.secrets import LinkSigner, load_or_create_key

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=JST)


def test_a_key_is_made_once_private_and_refused_when_others_may_read_it(tmp_path):
    path = tmp_path / "state" / "link.key"
    key = load_or_create_key(path)
    assert len(key) == 64 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == key
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_key(path)


def test_signed_links_expire_and_bind_their_subject_and_purpose():
    unsubscribe = LinkSigner(b"k" * 32, "unsubscribe", timedelta(days=30))
    expires, token = unsubscribe.sign("MTR-1", NOW)
    assert unsubscribe.verify("MTR-1", expires, token, NOW + timedelta(days=29))
    assert not unsubscribe.verify("MTR-1", expires, token, NOW + timedelta(days=31))  # expired
    assert not unsubscribe.verify("MTR-2", expires, token, NOW)  # another meter
    assert not unsubscribe.verify("MTR-1", expires + 86400, token, NOW)  # a lengthened expiry
    assert not LinkSigner(b"k" * 32, "delete", timedelta(days=30)).verify("MTR-1", expires, token, NOW)
    assert not LinkSigner(b"x" * 32, "unsubscribe", timedelta(days=30)).verify("MTR-1", expires, token, NOW)
    assert not unsubscribe.verify("MTR-1", "soon", token, NOW)


def test_operator_passwords_are_hashed_and_checked(tmp_path):
    stored = hash_password("correct horse battery")
    assert "correct" not in stored and check_password("correct horse battery", stored)
    assert not check_password("wrong horse battery", stored) and not check_password("x", "garbage")
    accounts = Accounts(tmp_path / "operators.json")
    accounts.add("tanaka", "operator", "correct horse battery")
    accounts.add("suzuki", "viewer", "another long password")
    assert stat.S_IMODE((tmp_path / "operators.json").stat().st_mode) == 0o600
    assert accounts.authenticate("tanaka", "correct horse battery").role == "operator"
    assert accounts.authenticate("tanaka", "wrong") is None and accounts.authenticate("nobody", "x") is None
    with pytest.raises(ConfigError, match="at least 12"):
        accounts.add("sato", "operator", "short")
    with pytest.raises(ConfigError, match="role"):
        accounts.add("sato", "admin", "long enough password")


def test_the_operator_command_takes_the_password_from_stdin_not_argv(tmp_path):
    import subprocess
    import sys

    accounts = tmp_path / "ops.json"
    out = subprocess.run([sys.executable, "-m", "smartmeter.cli", "cloud", "operator", "add", "tanaka", "--role",
                          "operator", "--accounts", str(accounts)], input="correct horse battery\n",
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert Accounts(accounts).authenticate("tanaka", "correct horse battery").role == "operator"
    listed = subprocess.run([sys.executable, "-m", "smartmeter.cli", "cloud", "operator", "list", "--accounts",
                             str(accounts)], capture_output=True, text=True, timeout=60)
    assert listed.stdout.split() == ["tanaka", "operator"]
