"""The grid operator's remote supply switching (JP6794864B2: the MDMS opens and closes a meter's supply).

A signed ``breaker`` command on ``meters/{id}/commands`` is taken only from a key the registry
certified with the ``grid_operator`` role (:func:`appliance.trust.verify_command`), with the replay
protection of contract changes: a short expiry and a serial strictly above the operator's last one.
An accepted order is journaled as a breaker request (``source`` ``grid:{code}``) in the same
transaction as its serial, so the breaker control applies it once, on the next step, through the
same path as the installer's requests: the relay, its feedback contact and an installer's override
all behave alike. The household sees a notice; a refused order (a company's, a replay, a forgery)
raises a ``security_error`` alert and touches nothing.
"""
from __future__ import annotations

import logging

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .clock import Clock
from .documents import claimed_company
from .errors import ChangeRejected
from .store import Store
from .trust import verify_command
from .trust.commands import BREAKER

log = logging.getLogger(__name__)

NOTICE = "breaker_remote"  # the household's notice of an accepted order
ACTION_JA = {"open": "電気の供給を止めました(開閉器を開きました)", "close": "電気の供給を再開しました(開閉器を閉じました)"}


class RemoteBreaker:
    def __init__(self, store: Store, meter_id: str, root_public_key: Ed25519PublicKey | bytes, clock: Clock) -> None:
        self.store, self.meter_id, self.root, self.clock = store, meter_id, root_public_key, clock

    def submit(self, payload: bytes) -> int | None:
        """Verify and journal one ``breaker`` command; returns the breaker request id, or None if refused."""
        now = self.clock.now()
        try:
            cmd = verify_command(payload, root_public_key=self.root, meter_id=self.meter_id, now=now,
                                 last_serial=self.store.last_serial)
            if cmd.type != BREAKER or cmd.breaker is None:
                raise ChangeRejected(f"a {cmd.type} command is not a breaker command")
        except ChangeRejected as exc:
            self._refused(exc, payload)
            return None
        order = cmd.breaker
        with self.store.transaction():
            self.store.record_serial(order.operator_code, order.serial)
            request_id = self.store.add_breaker_request(order.action, order.reason or "remote", False, now,
                                                        source=f"grid:{order.operator_code}")
            self.store.raise_alert(
                now, NOTICE, f"the grid operator {order.operator_code} {'opened' if order.action == 'open' else 'closed'}"
                f" the breaker: {order.reason or 'no reason given'}",
                f"送配電事業者({order.operator_code})が{ACTION_JA[order.action]}" + (f": {order.reason}" if order.reason else ""),
                order.operator_code, action=order.action, serial=order.serial, request=request_id)
        log.info("grid operator %s: breaker %s (serial %s, request #%s): %s", order.operator_code, order.action,
                 order.serial, request_id, order.reason)
        return request_id

    def _refused(self, exc: ChangeRejected, payload: bytes) -> None:
        reason = getattr(exc, "reason", str(exc))
        code = getattr(exc, "code", "rejected")
        reason_ja = getattr(exc, "reason_ja", "電気の入切指令を受け付けられません")
        claimed = claimed_company(payload)
        log.warning("breaker command refused (%s, claims %s): %s", code, claimed, reason)
        self.store.raise_alert(self.clock.now(), "security_error", f"remote breaker command refused: {reason}",
                               f"遠隔の電気の入切指令を拒否しました: {reason_ja}", claimed, source="remote", code=code,
                               purpose="breaker")
