"""Secrets of the cloud side: a key generated at first start and kept 0600, and links signed with
it that name their purpose and expire (e-mailed unsubscribe links). No default secret exists."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from appliance.config import read_secret
from appliance.errors import ConfigError


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``; created (32 random bytes, hex, mode 0600) if there is none. A key file
    readable by group or others is refused, naming it and the fix."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another handler created it a moment ago
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    text = read_secret(path, "secret key").strip()
    if len(text) < 32:
        raise ConfigError(f"secret key: {path} holds {len(text)} characters; a key needs at least 32")
    return text.encode()


class LinkSigner:
    """``token = HMAC(key, purpose|subject|expiry)``: a link for one purpose, one subject (a meter id,
    an e-mail address) and a limited time; it cannot be turned into another."""

    def __init__(self, key: bytes, purpose: str, lifetime: timedelta) -> None:
        self.key, self.purpose, self.lifetime = key, purpose, lifetime

    def sign(self, subject: str, now: datetime) -> tuple[int, str]:
        """``(expires, token)`` for ``subject``: expiry as epoch seconds, to put in the link."""
        expires = int((now + self.lifetime).timestamp())
        return expires, self._token(subject, expires)

    def verify(self, subject: str, expires: str | int, token: str, now: datetime) -> bool:
        try:
            expiry = int(expires)
        except (TypeError, ValueError):
            return False
        if expiry < now.timestamp():
            return False
        return hmac.compare_digest(self._token(subject, expiry), str(token))

    def _token(self, subject: str, expires: int) -> str:
        mac = hmac.new(self.key, f"{self.purpose}|{subject}|{expires}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac[:24]).decode().rstrip("=")
