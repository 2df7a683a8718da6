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
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.api import MeterAPI
from appliance.clock import Clock, ScaledClock, SystemClock
from appliance.documents import CardCheck
from appliance.store import Store
from devkit.process import ChildFailed, ChildProcess

from .control import EmulationControl, EmulationError
from .emulation import DESCRIPTOR

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


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

    @property
    def check(self) -> CardCheck:
        """The core's check of this meter's contract cards."""
        return CardCheck(bytes.fromhex(self.descriptor["registry_public_key"]), self.meter_id, self.clock,
                         self.api.store)

    def card_slots(self, names=None):
        """The household's card slots over this meter: cards verified by the core, the stored
        catalogue checked as the meter's own copy (no replay check when it is read back)."""
        from ui.model import CardSlots

        check = self.check
        return CardSlots(tuple(names or self.control.slots), check, self.clock.now, verify_stored=check.stored)

    def start_card_readers(self, callbacks) -> list:
        """The card readers of the emulated slots: PC/SC (pcscd with vpcd) and NFC (nfcpy udp)."""
        from drivers.cards.nfc import NfcSlot
        from drivers.cards.pcsc import PcscSlots
        from drivers.cards.sim import SIM_SLOTS
        from drivers.cards.vpcd import reader_slot_names

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
        self.child: ChildProcess | None = None

    @property
    def log_path(self) -> Path:
        return self.workdir / "emulation.log"

    def start(self, timeout: float = 60.0) -> "EmulationProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / DESCRIPTOR).unlink(missing_ok=True)
        self.child = ChildProcess([sys.executable, "-m", "smartmeter.emulation", *self.args], self.log_path, cwd=ROOT,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            self.child.start((self.workdir / DESCRIPTOR).exists, timeout=timeout, what="the emulated system")
        except ChildFailed as exc:
            self.child = None
            raise EmulationError(f"the emulated system did not start; {exc}") from None
        return self

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace=20)
        self.child = None

    def __enter__(self) -> "EmulationProcess":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
