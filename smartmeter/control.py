"""The emulation drawer's control socket, both ends.

The emulated system (:mod:`smartmeter.emulation`) serves the drawer's actions -- insert a card, set
the load, cut the supply, stop the broker -- to another process (the touch screen's) over an
owner-only Unix socket with a shared secret. Only the names in :data:`ACTIONS` can be called.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
from multiprocessing.connection import Client, Listener
from typing import Any

log = logging.getLogger(__name__)

# The drawer's actions, callable over the control socket (nothing else is).
ACTIONS = ("insert_card", "remove_card", "set_load", "set_solar_export", "set_supply", "set_broker",
           "set_breaker", "set_answer", "state")


class ControlServer:
    """The drawer's actions for another process: ``(action, args)`` in, ``("ok", result)`` or
    ``("error", message)`` out, over an owner-only Unix socket with a shared secret."""

    def __init__(self, system: Any) -> None:
        """``system``: the :class:`smartmeter.emulation.EmulatedSystem` whose actions are served."""
        self.system = system
        self.path = system.workdir / "control.sock"
        self.path.unlink(missing_ok=True)
        key = secrets.token_bytes(32)
        key_file = system.workdir / "control.key"
        key_file.write_bytes(b"")
        key_file.chmod(0o600)
        key_file.write_bytes(key)
        old = os.umask(0o077)
        try:
            self.listener = Listener(str(self.path), family="AF_UNIX", authkey=key)
        finally:
            os.umask(old)
        threading.Thread(target=self._accept, name="emulation-control", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except OSError:
                return  # closed
            except Exception as exc:  # a client with the wrong key
                log.warning("emulation control: refused a client: %s", exc)
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn) -> None:
        with conn:
            while True:
                try:
                    action, args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    if action not in ACTIONS:
                        raise ValueError(f"unknown action {action!r}")
                    result = getattr(self.system, action)(*args)
                    conn.send(("ok", result if action == "state" else self.system.state()))
                except Exception as exc:  # told to the drawer; the emulation goes on
                    log.warning("emulation control: %s%r failed: %s", action, tuple(args), exc)
                    conn.send(("error", f"{type(exc).__name__}: {exc}"))

    def close(self) -> None:
        self.listener.close()
        self.path.unlink(missing_ok=True)


class EmulationError(RuntimeError):
    pass


class EmulationControl:
    """The emulation drawer's actions, carried out by the emulation process. Thread-safe; each call
    blocks until done (call it off the UI thread) and raises :class:`EmulationError` on refusal."""

    def __init__(self, path: str, key: bytes) -> None:
        self._conn = Client(path, family="AF_UNIX", authkey=key)
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {}
        self._call("state")

    def _call(self, action: str, *args: Any) -> dict[str, Any]:
        with self._lock:
            self._conn.send((action, args))
            status, value = self._conn.recv()
        if status != "ok":
            raise EmulationError(value)
        self._state = value
        return value

    # what the drawer shows
    @property
    def supply_on(self) -> bool:
        return self._state["supply_on"]

    @property
    def broker_up(self) -> bool:
        return self._state["broker_up"]

    @property
    def slots(self) -> list[str]:
        return self._state["slots"]

    @property
    def cards(self) -> list[str]:
        return self._state["cards"]

    @property
    def inserted(self) -> dict[str, str]:
        """slot -> the example card the drawer put in it."""
        return self._state.get("inserted", {})

    @property
    def load_w(self) -> float | None:
        """The load set from the drawer (None: the household profile)."""
        return self._state.get("load_w")

    @property
    def solar_w(self) -> float:
        return self._state.get("solar_w", 0.0)

    def answer_of(self, card: str) -> str:
        """How the company issuing ``card`` answers confirmations now."""
        return self._state["answers"][self._state["card_companies"][card]]

    # what the drawer does
    def insert_card(self, slot: str, card: str) -> None:
        self._call("insert_card", slot, card)

    def remove_card(self, slot: str) -> None:
        self._call("remove_card", slot)

    def set_load(self, watts: float | None) -> None:
        self._call("set_load", watts)

    def set_solar_export(self, watts: float) -> None:
        self._call("set_solar_export", watts)

    def set_supply(self, on: bool) -> None:
        self._call("set_supply", on)

    def set_broker(self, up: bool) -> None:
        self._call("set_broker", up)

    def set_breaker(self, open_: bool) -> None:
        self._call("set_breaker", open_)

    def set_answer(self, card: str, mode: str) -> None:
        """Make the server of the company issuing ``card`` answer confirmations truthfully (``records``)
        or with a spoofed record (``wrong``)."""
        self._call("set_answer", self._state["card_companies"][card], mode)

    def close(self) -> None:
        self._conn.close()


