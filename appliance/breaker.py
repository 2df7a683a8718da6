"""The core's side of the breaker (interrupting unit 57): who may open or close it, and why.

The core sees the relay only through :class:`appliance.interfaces.Breaker`. :class:`BreakerControl`

* opens it on a failed confirmation from the power company, and keeps it open in new-building mode
  until the first matching confirmation from a power company (:mod:`appliance.confirmation`);
* applies the installer's requests (``smartmeter appliance breaker open|close|release``), which the
  CLI leaves in the store's ``breaker_requests`` table. The request's id is the relay's command_id,
  and the relay ignores an id it has already seen, so a request applied just before a crash (and
  so never marked) acts once: the next start marks it ``replayed``;
* mirrors its :class:`BreakerState` into the store (:meth:`Store.breaker_state`) for the CLI and the
  touch screen.

Without a breaker fitted (``breaker`` None) the same decisions are made and shown, with
``fitted=False``, so a meter without a relay still tells the household what it would do.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import replace

from .clock import Clock, SystemClock, iso
from .interfaces import Breaker, BreakerState
from .store import BreakerRequest, Store

log = logging.getLogger(__name__)


class UnfittedBreaker:
    """A :class:`Breaker` for a meter without a relay: it remembers what it was told, and switches
    nothing. It starts from the state last mirrored in the store. A release lifts the override only
    (unlike the relay, it keeps the reason and time of the last switch)."""

    def __init__(self, saved: BreakerState | None, clock: Clock) -> None:
        self.clock = clock
        self._state = (replace(saved, contact=None, contact_fault=False) if saved is not None
                       else BreakerState(closed=True, reason="no breaker fitted", at=iso(clock.now())))

    def state(self) -> BreakerState:
        return self._state

    def command(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool:
        if self._replayed(command_id):
            return False
        cur = replace(self._state, command_id=command_id if command_id is not None else self._state.command_id)
        if cur.override and not override:
            self._state = cur
            return False
        if cur.closed != closed or cur.override != override:
            log.warning("breaker (not fitted) would be %s: %s", "CLOSED" if closed else "OPENED", reason)
            cur = replace(cur, closed=closed, reason=reason, at=iso(self.clock.now()), override=override)
        self._state = cur
        return True

    def release(self, reason: str, *, command_id: int | None = None) -> bool:
        if self._replayed(command_id):
            return False
        self._state = replace(self._state, override=False,
                              command_id=command_id if command_id is not None else self._state.command_id)
        return True

    def shutdown(self) -> None:
        pass

    def _replayed(self, command_id: int | None) -> bool:
        last = self._state.command_id
        return command_id is not None and last is not None and command_id <= last


class BreakerControl:
    def __init__(self, store: Store, breaker: Breaker | None, clock: Clock) -> None:
        self.store = store
        self.fitted = breaker is not None
        self.breaker: Breaker = breaker if breaker is not None else UnfittedBreaker(store.breaker_state(), clock)
        self.clock = clock
        self._last_contact_fault = False
        self.publish()

    def state(self) -> BreakerState:
        return replace(self.breaker.state(), fitted=self.fitted)

    @property
    def closed(self) -> bool:
        return self.state().closed

    def set(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool:
        """Open or close (the core's own decisions: no override). Returns whether it acted."""
        done = self.breaker.command(closed, reason, override=override, command_id=command_id)
        self.publish()
        return done

    def release(self, reason: str, *, command_id: int | None = None) -> bool:
        done = self.breaker.release(reason, command_id=command_id)
        self.publish()
        return done

    def apply_requests(self) -> None:
        """The installer's requests left by the CLI, oldest first; each applied at most once."""
        for req in self.store.pending_breaker_requests():
            outcome = self._apply(req)
            self.store.mark_breaker_request(req.id, self.clock.now(), outcome)

    def _apply(self, req: BreakerRequest) -> str:
        seen = self.breaker.state().command_id
        if seen is not None and req.id <= seen:
            # applied (or refused) before a crash that came before its outcome was recorded
            log.info("%s request #%s (%s) was already handled before a restart", req.source, req.id, req.action)
            return "replayed"
        who = f"grid operator {req.source[5:]}" if req.source.startswith("grid:") else "installer"
        reason = f"{who}: {req.reason or 'manual'}"
        if req.action == "release":
            done = self.release(reason, command_id=req.id)
        else:
            done = self.set(req.action == "close", reason, override=req.override, command_id=req.id)
        if not done:
            log.warning("%s request #%s (%s) not applied: see the breaker log", req.source, req.id, req.action)
        return "applied" if done else "refused"

    def publish(self) -> None:
        s = self.state()
        if self.store.breaker_state() != s:
            self.store.set_breaker_state(s)
        if s.contact_fault and not self._last_contact_fault:
            log.error("breaker feedback contact says %s but the relay is commanded %s",
                      "closed" if s.contact else "open", "closed" if s.closed else "open")
            self.store.raise_alert(self.clock.now(), "breaker_fault",
                                   "the breaker's contact does not follow its command (check the relay)",
                                   "遮断器の接点が指令どおりに動いていません(点検が必要です)", None, breaker=s.to_json())
        self._last_contact_fault = s.contact_fault


# -- the installer's CLI: smartmeter appliance breaker open|close|release|status ---------------

def request(store: Store, action: str, reason: str, override: bool = False, clock: Clock | None = None) -> int:
    """Leave an installer request for the running service; returns its id."""
    return store.add_breaker_request(action, reason, override, (clock or SystemClock()).now())


def applied(store: Store, request_id: int) -> bool:
    req = store.breaker_request(request_id)
    return req is not None and req.applied_at is not None


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
            rid = request(store, args.action, args.reason, args.override, SystemClock())
            deadline = time.monotonic() + args.wait
            while time.monotonic() < deadline and not applied(store, rid):
                time.sleep(0.1)
            if not applied(store, rid):
                print(f"request #{rid} queued: the meter service applies it when it runs")
        state = store.breaker_state()
        if args.json:
            print(json.dumps(state.to_json() if state is not None else None, ensure_ascii=False))
        elif state is None:
            print("breaker: unknown (the meter service has not run yet)")
        else:
            contact = "" if state.contact is None else f", contact {'closed' if state.contact else 'open'}"
            print(f"breaker: {'CLOSED' if state.closed else 'OPEN'}{' (override)' if state.override else ''}"
                  f"{'' if state.fitted else ' (not fitted)'}{contact}\n"
                  f"  since {state.at}: {state.reason}")
        return 0
    finally:
        store.close()
