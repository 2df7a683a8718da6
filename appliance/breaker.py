"""The core's side of the breaker (interrupting unit 57): who may open or close it, and why.

The core sees the relay only through :class:`appliance.interfaces.Breaker`. :class:`BreakerControl`

* opens it on a failed confirmation from the power company, and keeps it open in new-building mode
  until the first matching confirmation from a power company (:mod:`appliance.confirmation`);
* applies the installer's requests (``smartmeter appliance breaker open|close|release``), which the
  CLI leaves in the store (meta ``breaker_requests``); each carries an id, and the breaker ignores an
  id it has already applied, so a request read twice (a crash before it was cleared) acts once;
* mirrors the state into store meta ``"breaker"`` (``{"closed", "reason", "at", "override",
  "contact", "fitted"}``) for the CLI and the touch screen.

Without a breaker fitted (``breaker`` None) the same decisions are made and shown, with
``fitted: False``, so a meter without a relay still tells the household what it would do.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from .clock import Clock, SystemClock, iso
from .interfaces import Breaker
from .store import Store

log = logging.getLogger(__name__)

REQUESTS = "breaker_requests"


class BreakerControl:
    def __init__(self, store: Store, breaker: Breaker | None, clock: Clock) -> None:
        self.store = store
        self.breaker = breaker
        self.clock = clock
        self._virtual: dict[str, Any] | None = None
        if breaker is None:
            saved = store.get_meta("breaker")
            self._virtual = dict(saved) if isinstance(saved, dict) else {
                "closed": True, "reason": "no breaker fitted", "at": iso(clock.now()), "override": False}
        self._last_contact_fault = False
        self.publish()

    @property
    def fitted(self) -> bool:
        return self.breaker is not None

    def state(self) -> dict[str, Any]:
        if self.breaker is not None:
            s = self.breaker.state()
        else:
            s = dict(self._virtual or {})
            s.setdefault("contact", None)
        s["fitted"] = self.breaker is not None
        return s

    @property
    def closed(self) -> bool:
        return bool(self.state()["closed"])

    def set(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool:
        """Open or close (the core's own decisions: no override). Returns whether it acted."""
        if self.breaker is not None:
            done = self.breaker.command(closed, reason, override=override, command_id=command_id)
        else:
            v = self._virtual or {}
            if v.get("override") and not override:
                done = False
            else:
                if v.get("closed") != closed or v.get("override") != override:
                    log.warning("breaker (not fitted) would be %s: %s", "CLOSED" if closed else "OPENED", reason)
                    self._virtual = {"closed": closed, "reason": reason, "at": iso(self.clock.now()),
                                     "override": override}
                done = True
        self.publish()
        return done

    def release(self, reason: str, *, command_id: int | None = None) -> bool:
        if self.breaker is not None:
            done = self.breaker.release(reason, command_id=command_id)
        else:
            self._virtual = dict(self._virtual or {}, override=False)
            done = True
        self.publish()
        return done

    def apply_requests(self) -> None:
        """The installer's requests left by the CLI, oldest first; each applied at most once."""
        requests = self.store.get_meta(REQUESTS) or []
        if not requests:
            return
        for req in requests:
            rid, action, reason = int(req["id"]), req["action"], f"installer: {req.get('reason') or 'manual'}"
            if action == "release":
                self.release(reason, command_id=rid)
            else:
                ok = self.set(action == "close", reason, override=bool(req.get("override")), command_id=rid)
                if not ok:
                    log.warning("installer request #%s (%s) not applied: see the breaker log", rid, action)
            self.store.set_meta("breaker_request_done", rid)
        with self.store.transaction():
            left = [r for r in (self.store.get_meta(REQUESTS) or []) if int(r["id"]) > max(int(r["id"]) for r in requests)]
            self.store.set_meta(REQUESTS, left)

    def publish(self) -> None:
        s = self.state()
        s["at"] = s.get("at")
        fault = s.get("contact") is not None and s["contact"] != s["closed"]
        s["contact_fault"] = fault
        if self.store.get_meta("breaker") != s:
            self.store.set_meta("breaker", s)
        if fault and not self._last_contact_fault:
            log.error("breaker feedback contact says %s but the relay is commanded %s",
                      "closed" if s["contact"] else "open", "closed" if s["closed"] else "open")
            self.store.raise_alert(self.clock.now(), "breaker_fault",
                                   "the breaker's contact does not follow its command (check the relay)",
                                   "遮断器の接点が指令どおりに動いていません(点検が必要です)", None, breaker=s)
        self._last_contact_fault = fault


# -- the installer's CLI: smartmeter appliance breaker open|close|release|status ---------------

def request(store: Store, action: str, reason: str, override: bool = False) -> int:
    """Leave an installer request for the running service; returns its id."""
    with store.transaction():
        rid = store.next_counter("breaker_request_id")
        requests = store.get_meta(REQUESTS) or []
        requests.append({"id": rid, "action": action, "reason": reason, "override": override,
                         "at": iso(SystemClock().now())})
        store.set_meta(REQUESTS, requests)
    return rid


def register_cli(groups) -> None:
    p = groups["appliance"].add_parser(
        "breaker", help="the installer's manual control of the breaker (open, close, override, status)",
        description="Open or close the supply breaker by hand, pin it with an override until released, or "
                    "show its state. The running meter service applies the request within a tick; every "
                    "operation is logged with its reason.",
        epilog="examples:\n  smartmeter appliance breaker status\n"
               "  smartmeter appliance breaker open --reason 'meter exchange' --override\n"
               "  smartmeter appliance breaker release --reason 'work done'\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from .cli import add_config_arg

    p.add_argument("action", choices=("open", "close", "release", "status"))
    p.add_argument("--reason", help="why (required for open, close and release); goes to the log")
    p.add_argument("--override", action="store_true",
                   help="pin the breaker in this state until `release` (automatic actions are refused)")
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for the service to apply it")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_arg(p)
    p.set_defaults(func=cmd_breaker)


def cmd_breaker(args: argparse.Namespace) -> int:
    from .cli import open_store
    from .errors import MeterError

    _cfg, store = open_store(args)
    try:
        if args.action != "status":
            if not args.reason:
                raise MeterError(f"breaker {args.action}: --reason is required (it goes to the log)")
            if args.override and args.action == "release":
                raise MeterError("breaker release: --override makes no sense here")
            rid = request(store, args.action, args.reason, args.override)
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline and (store.get_meta("breaker_request_done") or 0) < rid:
                time.sleep(0.1)
            if (store.get_meta("breaker_request_done") or 0) < rid:
                print(f"request #{rid} queued: the meter service applies it when it runs")
        state = store.get_meta("breaker")
        if args.json:
            print(json.dumps(state, ensure_ascii=False))
        elif state is None:
            print("breaker: unknown (the meter service has not run yet)")
        else:
            contact = "" if state.get("contact") is None else f", contact {'closed' if state['contact'] else 'open'}"
            print(f"breaker: {'CLOSED' if state['closed'] else 'OPEN'}{' (override)' if state.get('override') else ''}"
                  f"{'' if state.get('fitted', True) else ' (not fitted)'}{contact}\n"
                  f"  since {state.get('at')}: {state.get('reason')}")
        return 0
    finally:
        store.close()
