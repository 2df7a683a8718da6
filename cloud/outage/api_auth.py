"""Who may use the outage manager's API: HTTP Basic credentials checked against the operators'
accounts (:mod:`cloud.accounts`). A ``viewer`` may read; only an ``operator`` may write.

A password check costs a deliberate ~70 ms of Argon2id, so a good login is remembered for a minute
(keyed by a hash of the credentials, never the password), and a client that keeps failing is turned
away unchecked for a while: a flood of bad passwords cannot keep the server's cores busy.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..accounts import Account, Accounts

REALM = 'Basic realm="smartmeter outage manager", charset="UTF-8"'
REMEMBER_S = 60.0
MAX_FAILURES = 10  # per client address ...
FAILURE_WINDOW_S = 60.0  # ... within this time; then refused unchecked until the window has passed
MAX_REMEMBERED = 1024


@dataclass(frozen=True)
class Verdict:
    account: Account | None
    limited: bool = False  # too many failures from this client: not even checked


class Gate:
    def __init__(self, accounts: Accounts, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.accounts = accounts
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._good: dict[bytes, tuple[Account, float]] = {}
        self._failures: dict[str, list[float]] = {}

    def check(self, authorization: str | None, client: str) -> Verdict:
        """HTTP Basic credentials from ``client`` (an address)."""
        credentials = _basic(authorization)
        if credentials is None:
            return Verdict(None, limited=self._limited(client, self.monotonic()))
        return self.login(*credentials, client)

    def _limited(self, client: str, now: float) -> bool:
        with self._lock:
            recent = [t for t in self._failures.get(client, ()) if now - t < FAILURE_WINDOW_S]
            self._failures[client] = recent
            return len(recent) >= MAX_FAILURES

    def login(self, name: str, password: str, client: str) -> Verdict:
        """A user name and password from ``client`` (a login form, or Basic credentials)."""
        now = self.monotonic()
        if self._limited(client, now):
            return Verdict(None, limited=True)
        if not name or len(name) > 64 or len(password) > 1024:
            return Verdict(None)
        fingerprint = hashlib.sha256(f"{name}\0{password}".encode()).digest()
        with self._lock:
            remembered = self._good.get(fingerprint)
            if remembered is not None and remembered[1] > now:
                return Verdict(remembered[0])
        account = self.accounts.authenticate(name, password)
        with self._lock:
            if account is None:
                self._failures.setdefault(client, []).append(now)
                return Verdict(None)
            if len(self._good) >= MAX_REMEMBERED:
                self._good.clear()
            self._good[fingerprint] = (account, now + REMEMBER_S)
        return Verdict(account)


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        text = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    name, sep, password = text.partition(":")
    return (name, password) if sep and name and len(name) <= 64 and len(password) <= 1024 else None


def basic_header(name: str, password: str) -> str:
    """The ``Authorization`` value for a client of the API (the simulator, the tests)."""
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()
