"""A relay breaker on a Raspberry Pi GPIO pin (gpiozero), with an optional feedback contact.

* **No glitch at boot**: the last commanded state is journaled (a small JSON file, written to a
  temporary file, fsync'd, renamed, directory fsync'd) and the output pin is created with
  ``initial_value`` set from it, so the pin never passes through the other state.
* **Journal first, pin second**: a power cut between the two leaves the journal ahead, and the
  next boot drives the pin to the journaled (commanded) state.
* **No replays**: a command carrying a ``command_id`` at or below the last one applied is ignored
  (an installer request read twice, a retained or replayed message).
* **Override**: an installer override pins the state until it is released; commands without
  ``override`` are then refused (and logged).
* Every open and close is logged with its reason.

Emulation and tests use gpiozero's ``MockFactory`` (``pin_factory="mock"`` or
``GPIOZERO_PIN_FACTORY=mock``); drive the feedback pin with ``factory.pin(n).drive_high()``.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from appliance.clock import Clock, SystemClock, iso
from appliance.config import PIN_FACTORIES
from appliance.interfaces import BreakerState
from gpiozero import DigitalInputDevice, DigitalOutputDevice

log = logging.getLogger(__name__)

# What the journal keeps: the commanded state, not what is read back (contact) or decided above.
_JOURNALED = ("closed", "reason", "at", "override", "command_id")


class BreakerJournal:
    """The last commanded state, durable across restarts and power cuts."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> BreakerState | None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # A torn journal cannot happen with rename, but a corrupted disk can: fail safe and say so.
            log.error("breaker journal %s unreadable (%s); treating the breaker as open", self.path, exc)
            return BreakerState(closed=False, reason=f"journal unreadable: {exc}")
        if not isinstance(data, dict) or not isinstance(data.get("closed"), bool):
            log.error("breaker journal %s malformed; treating the breaker as open", self.path)
            return BreakerState(closed=False, reason="journal malformed")
        return BreakerState(closed=data["closed"], reason=str(data.get("reason", "")), at=data.get("at"),
                            override=bool(data.get("override", False)), command_id=data.get("command_id"))

    def save(self, state: BreakerState) -> None:
        record = {k: v for k, v in state.to_json().items() if k in _JOURNALED}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".breaker-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(record, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dirfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)


# gpiozero's factory class for each name a config may give (appliance.config.PIN_FACTORIES).
FACTORY_CLASSES: dict[str, tuple[str, str]] = {
    "lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
    "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
    "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
    "native": ("gpiozero.pins.native", "NativeFactory"),
    "mock": ("gpiozero.pins.mock", "MockFactory"),
}


def make_pin_factory(name: str | None):
    """A gpiozero pin factory by name (None: gpiozero's default, which honours GPIOZERO_PIN_FACTORY)."""
    if name is None:
        return None
    if name not in PIN_FACTORIES:
        raise ValueError(f"unknown pin factory {name!r}: the valid ones are {', '.join(PIN_FACTORIES)}")
    module, cls = FACTORY_CLASSES[name]
    # imported only when named: each pin library is optional and some exist only on a Pi
    return getattr(importlib.import_module(module), cls)()


class RelayBreaker:
    """Implements :class:`appliance.interfaces.Breaker` with a relay on ``pin``.

    ``normally_closed``: the supply runs through the relay's NC contact, so energising the coil
    cuts it (the supply stays on if the Pi dies). ``default_closed`` is the state when no journal
    exists yet (a new meter): closed, or open in new-building mode.
    """

    def __init__(self, pin: int | str, journal: str | Path, *, feedback_pin: int | str | None = None,
                 active_high: bool = True, normally_closed: bool = False, feedback_active_high: bool = True,
                 default_closed: bool = True, pin_factory: Any = None, clock: Clock = SystemClock()) -> None:
        self.journal = BreakerJournal(journal)
        self.normally_closed = normally_closed
        self.clock = clock
        self._lock = threading.Lock()
        saved = self.journal.load()
        if saved is None:
            saved = BreakerState(closed=default_closed, reason="first start" + ("" if default_closed else " (open)"),
                                 at=iso(clock.now()))
            self.journal.save(saved)
        self._state = saved  # as commanded; state() adds what the contact says
        # The pin comes up in the journaled state: no glitch through the other state at boot.
        self.output = DigitalOutputDevice(pin, active_high=active_high, initial_value=self._coil(saved.closed),
                                          pin_factory=pin_factory)
        # Feedback: an auxiliary contact. Active low (the usual dry contact to GND) uses the pull-up.
        self.feedback = (DigitalInputDevice(feedback_pin, pull_up=not feedback_active_high, pin_factory=pin_factory)
                         if feedback_pin is not None else None)
        log.info("breaker on pin %s: %s at start (%s)%s", pin, "CLOSED" if saved.closed else "OPEN",
                 saved.reason, ", pinned by an installer override" if saved.override else "")

    def _coil(self, closed: bool) -> bool:
        return closed != self.normally_closed

    # -- Breaker ----------------------------------------------------------------------------
    def state(self) -> BreakerState:
        with self._lock:
            commanded = self._state
        contact = bool(self.feedback.value) if self.feedback is not None else None
        return replace(commanded, contact=contact, contact_fault=contact is not None and contact != commanded.closed)

    def command(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool:
        with self._lock:
            if self._replayed(command_id):
                log.warning("breaker: ignored replayed command #%s (%s %s)", command_id,
                            "close" if closed else "open", reason)
                return False
            cur = self._state
            if cur.override and not override:
                log.warning("breaker: %s refused (%s): pinned %s by an installer override (%s)",
                            "close" if closed else "open", reason, "closed" if cur.closed else "open", cur.reason)
                self._remember(command_id)
                return False
            if closed == cur.closed and override == cur.override:
                self._remember(command_id)
                return True
            new = BreakerState(closed=closed, reason=reason, at=iso(self.clock.now()), override=override,
                               command_id=command_id if command_id is not None else cur.command_id)
            self.journal.save(new)  # journal first: a crash now still ends in the commanded state
            self._state = new
            self.output.value = self._coil(closed)
        log.warning("breaker %s: %s%s", "CLOSED" if closed else "OPENED", reason,
                    " (installer override: pinned until released)" if override else "")
        return True

    def release(self, reason: str, *, command_id: int | None = None) -> bool:
        with self._lock:
            if self._replayed(command_id):
                log.warning("breaker: ignored replayed release #%s", command_id)
                return False
            cur = self._state
            if not cur.override:
                self._remember(command_id)
                return True
            new = replace(cur, override=False, reason=f"{cur.reason}; override released: {reason}",
                          at=iso(self.clock.now()),
                          command_id=command_id if command_id is not None else cur.command_id)
            self.journal.save(new)
            self._state = new
        log.warning("breaker override released (%s); it stays %s", reason, "closed" if new.closed else "open")
        return True

    def shutdown(self) -> None:
        """Free the pins. The relay keeps its state only as long as the pin driver holds it; the
        journal restores it at the next start."""
        if self.feedback is not None:
            self.feedback.close()
        self.output.close()

    # -- helpers ------------------------------------------------------------------------------
    def _replayed(self, command_id: int | None) -> bool:
        last = self._state.command_id
        return command_id is not None and last is not None and command_id <= last

    def _remember(self, command_id: int | None) -> None:
        if command_id is not None and command_id != self._state.command_id:
            self._state = replace(self._state, command_id=command_id)
            self.journal.save(self._state)
