"""The cloud side's secrets: a key made at first start (0600, refused if others may read it), signed
links that expire and cannot be reused for another subject, and operators' hashed passwords."""
from __future__ import annotations

import json
import stat
import time
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
    assert stored.startswith("$argon2id$v=19$m=47104,t=1,p=1$") and "correct" not in stored
    assert check_password("correct horse battery", stored)
    assert not check_password("wrong horse battery", stored) and not check_password("x", "garbage")
    salt, digest = stored.rsplit("$", 2)[1:]
    for tampered in (stored[:-len(digest)] + _flip(digest), stored.replace(salt, _flip(salt)),
                     stored.replace("t=1", "t=2"), stored.replace("$argon2id$", "$argon2i$")):
        assert not check_password("correct horse battery", tampered), tampered
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


def _flip(b64: str) -> str:
    """The same text with its first character changed (still base64)."""
    return ("B" if b64[0] == "A" else "A") + b64[1:]


def _old_scrypt_hash(password: str) -> str:
    """A hash as accounts were written before Argon2: scrypt N=2^14, r=8, p=1."""
    import base64
    import hashlib

    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "$".join(["scrypt", "16384", "8", "1", base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def test_old_hashes_sign_in_and_are_replaced_by_argon2id(tmp_path):
    from argon2 import PasswordHasher

    path = tmp_path / "operators.json"
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash("viewer password 1")
    old = {"accounts": [{"name": "tanaka", "role": "operator", "password_hash": _old_scrypt_hash("correct horse battery")},
                        {"name": "suzuki", "role": "viewer", "password_hash": weak}]}
    path.write_text(json.dumps(old))
    path.chmod(0o600)
    accounts = Accounts(path)
    assert accounts.authenticate("tanaka", "wrong horse battery") is None
    assert json.loads(path.read_text()) == old  # a failed sign-in rewrites nothing
    assert accounts.authenticate("tanaka", "correct horse battery").role == "operator"
    assert accounts.authenticate("suzuki", "viewer password 1").role == "viewer"
    hashes = {a.name: a.password_hash for a in accounts.load().values()}
    assert all(h.startswith("$argon2id$v=19$m=47104,t=1,p=1$") for h in hashes.values()), hashes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and [p.name for p in tmp_path.iterdir()] == ["operators.json"]
    assert accounts.authenticate("tanaka", "correct horse battery").role == "operator"
    assert accounts.authenticate("tanaka", "wrong horse battery") is None
    assert accounts.load()["tanaka"].password_hash == hashes["tanaka"]  # a current hash is kept as it is


def test_a_password_set_during_a_sign_in_is_not_undone_by_its_rehash(tmp_path, monkeypatch):
    import cloud.accounts

    path = tmp_path / "operators.json"
    path.write_text(json.dumps({"accounts": [{"name": "tanaka", "role": "operator",
                                              "password_hash": _old_scrypt_hash("correct horse battery")}]}))
    path.chmod(0o600)
    accounts = Accounts(path)

    def new_password_meanwhile(stored: str) -> bool:
        accounts.add("tanaka", "operator", "a brand new password")
        return True

    monkeypatch.setattr(cloud.accounts, "needs_rehash", new_password_meanwhile)
    assert accounts.authenticate("tanaka", "correct horse battery") is not None  # checked before the change
    monkeypatch.undo()
    assert accounts.authenticate("tanaka", "a brand new password") is not None
    assert accounts.authenticate("tanaka", "correct horse battery") is None


def test_an_unknown_name_costs_a_password_check_too(tmp_path):
    accounts = Accounts(tmp_path / "operators.json")
    accounts.add("tanaka", "operator", "correct horse battery")

    def fastest(name: str) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert accounts.authenticate(name, "wrong horse battery") is None
            times.append(time.perf_counter() - start)
        return min(times)

    assert fastest("nobody") > 0.5 * fastest("tanaka")


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
