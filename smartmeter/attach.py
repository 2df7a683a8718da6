"""Attaching to a running emulated system (:mod:`smartmeter.emulation`) from another process.

The touch screen runs beside the meter as it does on a real one: it opens the meter's store through
:class:`appliance.api.MeterAPI`, reads the card readers itself and verifies cards against the
registry's key. What only an emulation has -- inserting cards, setting the load, cutting the supply,
stopping the broker -- goes to the emulation process over its control socket
(:class:`EmulationControl`).

``emulation.json`` in the emulation's work directory tells an attaching process where everything is.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Client
from pathlib import Path
from typing import Any

from appliance.api import MeterAPI
from appliance.clock import Clock, ScaledClock, SystemClock
from appliance.store import Store

from .emulation import DESCRIPTOR

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


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


@dataclass
class Attached:
    """A running emulated system, seen from another process."""

    descriptor: dict[str, Any]
    clock: Clock
    api: MeterAPI
    control: EmulationControl

    @property
    def meter_id(self) -> str:
        return self.descriptor["meter_id"]

    @property
    def workdir(self) -> Path:
        return Path(self.descriptor["workdir"])

    def verify(self, raw: bytes, *, stored: bool = False):
        """The core's check of a card document; ``stored``: the meter's own copy (no replay check)."""
        from appliance.trust import verify_document

        return verify_document(raw, root_public_key=bytes.fromhex(self.descriptor["registry_public_key"]),
                               meter_id=self.meter_id, now=self.clock.now(),
                               last_serial=None if stored else self.api.store.last_serial)

    def card_slots(self, names=None):
        """The household's card slots over this meter: cards verified by the core, the stored
        catalogue checked as the meter's own copy (no replay check when it is read back)."""
        from ui.model import CardSlots

        return CardSlots(tuple(names or self.control.slots), self.verify, self.clock.now,
                         verify_stored=lambda raw: self.verify(raw, stored=True))

    def start_card_readers(self, callbacks) -> list:
        """The card readers of the emulated slots: PC/SC (pcscd with vpcd) and NFC (nfcpy udp)."""
        from drivers.cards.nfc import NfcSlot
        from drivers.cards.pcsc import PcscSlots
        from drivers.cards.pcscd import reader_slot_names
        from drivers.cards.sim import SIM_SLOTS

        readers = [PcscSlots(callbacks, reader_slot_names(), only_named=True, wait_ms=200).start()]
        if "4" in self.control.slots:
            readers.append(NfcSlot("4", SIM_SLOTS["4"].reader, callbacks).start())
        readers[0].ready.wait(5)
        return readers

    def company_events(self, code: str) -> list[dict[str, Any]]:
        """What a company's server has received (its own database)."""
        import sqlite3

        from cloud.company_server import read_events

        db = sqlite3.connect(self.descriptor["companies"][code])
        try:
            return read_events(db)
        finally:
            db.close()

    def close(self) -> None:
        self.control.close()
        self.api.store.close()


def clock_of(descriptor: dict[str, Any]) -> Clock:
    """The emulation's clock, reproduced: the same simulated time at the same speed."""
    c = descriptor["clock"]
    if c["speed"] == 1:
        return SystemClock()
    sim_now = datetime.fromisoformat(c["sim"]) + timedelta(seconds=(time.time() - c["wall"]) * c["speed"])
    return ScaledClock(sim_now, c["speed"])


def attach(workdir: Path) -> Attached:
    descriptor = json.loads((workdir / DESCRIPTOR).read_text(encoding="utf-8"))
    clock = clock_of(descriptor)
    api = MeterAPI(Store(descriptor["store"]), descriptor["meter_id"], timedelta(seconds=descriptor["interval_s"]),
                   clock)
    control = EmulationControl(descriptor["control"], (workdir / "control.key").read_bytes())
    return Attached(descriptor, clock, api, control)


class EmulationProcess:
    """``python -m smartmeter.emulation`` as a child process: started, waited for, stopped."""

    def __init__(self, workdir: Path, *, interval: str = "5s", speed: float = 1.0, nfc: bool = True,
                 load: float | None = None) -> None:
        self.workdir = workdir
        self.args = ["--workdir", str(workdir), "--interval", interval, "--speed", str(speed)]
        self.args += [] if nfc else ["--no-nfc"]
        self.args += [] if load is None else ["--load", str(load)]
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "EmulationProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / DESCRIPTOR).unlink(missing_ok=True)
        self.log_path = self.workdir / "emulation.log"
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "smartmeter.emulation", *self.args], cwd=ROOT,
                                         stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + timeout
        while not (self.workdir / DESCRIPTOR).exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-2000:]
                raise EmulationError(f"the emulated system did not start; {self.log_path}:\n{tail}")
            time.sleep(0.1)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> "EmulationProcess":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
