"""Signed contract change data into the core: contract cards (embodiments 1, 2) and remote
``contract_change`` commands (embodiment 3) take one path, the same as a CLI change (S801/S802).

:class:`DocumentIntake` verifies the signed bytes against the meter's trust anchor (the registry's
root public key), converts them with :func:`appliance.trust.to_change` and calls
:meth:`appliance.api.MeterAPI.submit_change`, which stores the change and records its serial in
one transaction. A refused document stores nothing: the reason goes to the log and to an alert
for the household display (``card_rejected`` for a card, ``remote_rejected`` for a command).

Card readers call :meth:`DocumentIntake.on_card_document` / :meth:`on_card_error` from their own
threads; give the intake its own :class:`~appliance.store.Store` connection (SQLite serialises
the writers). Verification and storing run under one lock, so the same card in two slots at once
is stored once and refused once (replayed).
"""
from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .api import MeterAPI
from .clock import Clock
from .errors import ChangeRejected
from .store import Store
from .trust import VerifiedDocument, to_change, verify_command, verify_document
from .trust.commands import CONTRACT_CHANGE
from .trust.cose import decode_sign1, loads_strict

log = logging.getLogger(__name__)

REJECTED_JA = "契約データを受け付けられません"


class CardCheck:
    """The core's one check of a contract card's signed document, for this meter, now.

    Calling it runs every check, replay included (a serial at or below the company's last one is
    refused). :meth:`stored` checks the meter's own stored copy (the Fig. 9(b) list): every check
    but replay, since its serial may since have been used. Both raise ``DocumentRejected``."""

    def __init__(self, root_public_key: Ed25519PublicKey | bytes, meter_id: str, clock: Clock, store: Store) -> None:
        self.root = root_public_key
        self.meter_id = meter_id
        self.clock = clock
        self.store = store

    def __call__(self, raw: bytes) -> VerifiedDocument:
        return self._verify(raw, replay_check=True)

    def stored(self, raw: bytes) -> VerifiedDocument:
        return self._verify(raw, replay_check=False)

    def _verify(self, raw: bytes, *, replay_check: bool) -> VerifiedDocument:
        return verify_document(raw, root_public_key=self.root, meter_id=self.meter_id, now=self.clock.now(),
                               last_serial=self.store.last_serial if replay_check else None)


class DocumentIntake:
    def __init__(self, api: MeterAPI, root_public_key: Ed25519PublicKey | bytes) -> None:
        self.api = api
        self.store = api.store
        self.root = root_public_key
        self.check = CardCheck(root_public_key, api.meter_id, api.clock, api.store)
        self._lock = threading.Lock()

    # -- cards ------------------------------------------------------------------------------
    def submit(self, raw: bytes, source: str) -> int:
        """Verify and store one signed document; returns the change id or raises ChangeRejected
        (after logging it and raising the alert)."""
        with self._lock:
            try:
                verified = self.check(raw)
                change_id = self.api.submit_change(to_change(verified, source))
            except ChangeRejected as exc:
                self._rejected(exc, source, raw)
                raise
        log.info("%s: stored signed change #%s from %s (serial %s)", source, change_id,
                 verified.document.company.code, verified.document.serial)
        return change_id

    def on_card_document(self, slot: str, raw: bytes) -> int | None:
        """A card slot's ``on_document`` hook: never raises (a refusal is already logged and alerted)."""
        try:
            return self.submit(raw, f"card:{slot}")
        except ChangeRejected:
            return None

    def on_card_error(self, slot: str, problem: Any, source: str | None = None) -> None:
        """A card slot's ``on_error`` hook: a card that could not be read, or is not a contract card."""
        source = source or f"card:{slot}"
        reason = getattr(problem, "reason", str(problem))
        code = getattr(problem, "code", "read_failed")
        reason_ja = getattr(problem, "reason_ja", REJECTED_JA)
        where, where_ja = _where(source)
        log.warning("%s: not taken: %s", source, reason)
        self.store.raise_alert(self.api.clock.now(), "card_rejected", f"{where}: {reason}",
                               f"{where_ja}: {reason_ja}", None, source=source, code=code)

    # -- a USB medium (a variation of embodiment 1): the same checks and alerts as a card ----------
    def on_medium_document(self, slot: str, raw: bytes) -> int | None:
        try:
            return self.submit(raw, f"usb:{slot}")
        except ChangeRejected:
            return None

    def on_medium_error(self, slot: str, problem: Any) -> None:
        self.on_card_error(slot, problem, source=f"usb:{slot}")

    # -- remote changes (embodiment 3) --------------------------------------------------------
    def submit_command(self, payload: bytes) -> int | None:
        """A signed ``contract_change`` command from ``meters/{id}/commands``: treated exactly like a card."""
        with self._lock:
            now = self.api.clock.now()
            try:
                cmd = verify_command(payload, root_public_key=self.root, meter_id=self.api.meter_id, now=now,
                                     last_serial=self.store.last_serial)
                if cmd.type != CONTRACT_CHANGE or cmd.document is None:
                    raise ChangeRejected(f"a {cmd.type} command is not a contract change")
                change_id = self.api.submit_change(to_change(cmd.document, "remote"))
            except ChangeRejected as exc:
                self._rejected(exc, "remote", payload)
                return None
        log.info("remote: stored signed change #%s from %s (serial %s)", change_id,
                 cmd.document.document.company.code, cmd.document.document.serial)
        return change_id

    def _rejected(self, exc: ChangeRejected, source: str, raw: bytes) -> None:
        reason = getattr(exc, "reason", str(exc))
        code = getattr(exc, "code", "rejected")
        reason_ja = getattr(exc, "reason_ja", REJECTED_JA)
        claimed = claimed_company(raw)
        log.warning("%s: contract change refused (%s): %s", source, code, reason)
        kind = "remote_rejected" if source == "remote" else "card_rejected"
        where, where_ja = _where(source)
        self.store.raise_alert(self.api.clock.now(), kind, f"{where}: {reason}", f"{where_ja}: {reason_ja}", claimed,
                               source=source, code=code)


def _where(source: str) -> tuple[str, str]:
    """Where a document came from, in the household's words (English, Japanese)."""
    if source.startswith("card:"):
        return f"card in slot {source[5:]}", f"スロット{source[5:]}のカード"
    if source.startswith("usb:"):
        return "contract file on the USB memory", "USBメモリの契約データ"
    return "remote contract change", "遠隔の契約変更"


def command_type(payload: bytes) -> str | None:
    """The routing label of a command (``confirm`` / ``contract_change``), or None if unreadable."""
    try:
        obj = json.loads(bytes(payload).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError, TypeError):
        return None
    kind = obj.get("type") if isinstance(obj, dict) else None
    return kind if isinstance(kind, str) else None


def claimed_company(raw: bytes) -> str | None:
    """The company code a document or command *claims* (unverified; for the log and alerts only)."""
    try:
        if raw[:1] == b"{":
            obj = json.loads(bytes(raw).decode("utf-8"))
            raw = base64.b64decode(obj["cose_sign1"], validate=True)
        body = loads_strict(decode_sign1(bytes(raw), what="document").payload, what="contents")
    except (ChangeRejected, ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("company_code")
    if code is None and isinstance(body.get("company"), dict):
        code = body["company"].get("code")
    return code[:32] if isinstance(code, str) else None
