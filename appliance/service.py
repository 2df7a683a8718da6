"""The meter service: the Fig. 8 loop, one :meth:`MeterService.step` per tick.

Each step does, in the patent's order: take in changes stored by other processes (S801/S802 run
in :mod:`appliance.intake`, called by the CLI, card readers and remote commands), measure if a
window closed (S807/S808), apply due contract changes (S803/S804), then queue and send (S805/S806).
The core is driven by an injected clock and knows the chip and the uplink only through their
interfaces.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import Clock
from .domain import Contract, Reading
from .interfaces import MeteringChip
from .measure import Measurer
from .sending import Sender
from .store import Store
from .switching import Switcher
from .uplink import OutboxPump, Uplink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceSettings:
    meter_id: str
    measurement_interval: timedelta
    retention: timedelta = timedelta(days=7)
    tick: timedelta = timedelta(milliseconds=500)


class MeterService:
    def __init__(self, settings: ServiceSettings, store: Store, chip: MeteringChip, uplink: Uplink,
                 clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.chip = chip
        self.clock = clock
        self.sender = Sender(store, settings.meter_id)
        self.measurer = Measurer(store, settings.meter_id, settings.measurement_interval)
        self.switcher = Switcher(store, self.sender)
        self.pump = OutboxPump(store, uplink)
        self.uplink = uplink
        self._last_prune: datetime | None = None
        self._link = None
        store.set_meta("measurement_interval_s", settings.measurement_interval.total_seconds())

    def commission(self, contracts: tuple[Contract, ...]) -> None:
        """Seed the contract data of a new meter from its config (only if it has none yet)."""
        with self.store.transaction():
            if self.store.get_meta("commissioned"):
                return
            now = self.clock.now()
            for c in contracts:
                self.store.put_contract(Contract(c.role, c.company, c.data_types, c.send_interval, c.menu, since=now))
            self.store.set_meta("commissioned", True)
        log.info("commissioned with %d contract(s)", len(contracts))

    def step(self) -> Reading | None:
        now = self.clock.now()
        reading = self._measure_if_due(now)
        for due in self.switcher.due(now):
            # A switch inside the running window closes it first, so the reading before the switch
            # goes to the outgoing company and the one after it to the incoming one: no gap, no
            # overlap. (A switch on a window boundary needs no extra reading.)
            self._close_window(due.occurrence, now)
            self.switcher.apply(due, now)
        self.pump.pump(now)
        self._note_link()
        self._prune(now)
        return reading

    def _note_link(self) -> None:
        """Keep the link state in the store, so the CLI and the UI can show it (only on change)."""
        state = self.uplink.state()
        if state != self._link:
            self._link = state
            self.store.set_meta("link", {"connected": state.connected, "detail": state.detail})

    def _measure_if_due(self, now: datetime) -> Reading | None:
        end = self.measurer.due(now)
        if end is None:
            return None
        return self._record(self.chip.read_sample(), end, now)

    def _close_window(self, occurrence: datetime, now: datetime) -> None:
        last = self.measurer.last_end
        if last is None or (last < occurrence and now > last):
            self._record(self.chip.read_sample(), now, now)

    def _record(self, sample, end: datetime, now: datetime) -> Reading | None:
        # The bus read happens before the transaction; the reading and everything owed to the
        # companies for it commit together.
        with self.store.transaction():
            reading = self.measurer.record(sample, end)
            if reading is not None:
                self.sender.queue_reading(reading, self.store.contracts(), now)
        return reading

    def _prune(self, now: datetime) -> None:
        if self._last_prune and now - self._last_prune < timedelta(hours=1) and now >= self._last_prune:
            return
        self._last_prune = now
        n = self.store.prune_readings(now - self.settings.retention)
        if n:
            log.info("pruned %d readings older than the %s retention", n, self.settings.retention)

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set. A failing step is logged and retried: the meter never stops measuring."""
        tick = self.settings.tick.total_seconds()
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("meter step failed; retrying next tick")
            stop.wait(tick)
