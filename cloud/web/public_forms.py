"""Abuse protection for the public site's forms, which have no sign-in and so no session to bind a CSRF
token to: a form token (an HMAC of the time the form was served, refused when too old or forged), a
same-origin check on the ``Origin`` header browsers send with every post, and a limit on posts per
client address."""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from starlette.requests import Request

from ..secrets import LinkSigner

FORM_LIFETIME = timedelta(hours=2)


class FormTokens:
    """``expires.mac``: proof that this site served the form within :data:`FORM_LIFETIME`."""

    def __init__(self, key: bytes, purpose: str) -> None:
        self.signer = LinkSigner(key, f"form:{purpose}", FORM_LIFETIME)

    def issue(self, now: datetime) -> str:
        expires, token = self.signer.sign("form", now)
        return f"{expires}.{token}"

    def valid(self, value: object, now: datetime) -> bool:
        expires, _, token = str(value or "")[:128].partition(".")
        return bool(token) and self.signer.verify("form", expires, token, now)


@dataclass
class RateLimit:
    """At most ``limit`` posts per client address in ``window``; the count is this process's."""

    limit: int = 20
    window: timedelta = timedelta(minutes=10)
    max_clients: int = 100_000  # past this many addresses, the oldest are forgotten
    _seen: dict[str, deque[datetime]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def allow(self, client: str, now: datetime) -> bool:
        with self._lock:
            recent = self._seen.pop(client, deque())
            while recent and now - recent[0] >= self.window:
                recent.popleft()
            allowed = len(recent) < self.limit
            if allowed:
                recent.append(now)
            if len(self._seen) >= self.max_clients:
                self._seen.pop(next(iter(self._seen)))
            self._seen[client] = recent  # re-inserted: the dict stays ordered by last use
            return allowed


def same_origin(request: Request) -> bool:
    """A post from a page of this site (or from a client that sends no ``Origin``, which no browser omits
    on a cross-site post)."""
    origin = request.headers.get("origin")
    # the host, not the scheme: behind a TLS proxy the browser's https is the server's http
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"
