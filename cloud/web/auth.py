"""Operators' sign-in for the operations site: the same accounts as the manager's API
(:mod:`cloud.accounts`, ``smartmeter cloud operator add``), a session cookie signed with the
handlers' key, a CSRF token bound to the session on every form, and the API's limit on failed
logins per address.

The session cookie carries ``name|role|expires|nonce`` and an HMAC over them; it is ``HttpOnly``,
``SameSite=Strict`` and (behind TLS) ``Secure``. The server keeps no session table, so several web
processes share sign-ins; signing out clears the cookie, and rotating the key ends every session.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..accounts import ROLES

COOKIE = "ops_session"
LIFETIME = timedelta(hours=8)


@dataclass(frozen=True)
class Session:
    name: str
    role: str  # operator | viewer
    expires: int  # epoch seconds
    nonce: str

    @property
    def may_write(self) -> bool:
        return self.role == "operator"


class Sessions:
    def __init__(self, key: bytes) -> None:
        self.key = key

    def issue(self, name: str, role: str, now: datetime) -> tuple[Session, str]:
        session = Session(name, role, int((now + LIFETIME).timestamp()), secrets.token_urlsafe(12))
        body = f"{session.name}|{session.role}|{session.expires}|{session.nonce}"
        return session, f"{_b64(body.encode())}.{self._mac('session|' + body)}"

    def read(self, cookie: str | None, now: datetime) -> Session | None:
        if not cookie or len(cookie) > 512 or "." not in cookie:
            return None
        encoded, mac = cookie.rsplit(".", 1)
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            name, role, expires, nonce = body.split("|")
            expiry = int(expires)
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(mac, self._mac("session|" + body)) or expiry < now.timestamp() or role not in ROLES:
            return None
        return Session(name, role, expiry, nonce)

    def csrf(self, session: Session) -> str:
        """The token every form of this session carries; a request from another site cannot know it."""
        return self._mac(f"csrf|{session.nonce}|{session.name}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf(session))

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self.key, text.encode(), hashlib.sha256).digest()[:24])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")
