"""The meter service: the Fig. 8 loop, one :meth:`MeterService.step` per tick.

Each step does, in the patent's order: take in changes stored by other processes (S801/S802 run
in :mod:`appliance.intake`, called by the CLI, card readers and remote commands), measure if a
window closed (S807/S808), apply due contract changes (S803/S804), then queue and send (S805/S806).
The core is driven by an injected clock and knows the chip and the uplink only through their
interfaces.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .api import MeterAPI
from .breaker import BreakerControl
from .clock import Clock
from .confirmation import ConfirmationSettings, Confirmer
from .documents import DocumentIntake, command_type
from .domain import Contract, Reading
from .interfaces import Breaker, MeteringChip
from .measure import Measurer
from .remote_breaker import RemoteBreaker
from .sending import Sender
from .store import Store
from .contract_state import ContractStatePublisher
from .supply import SupplyWatch
from .switching import Switcher
from .uplink import MAX_COMMAND_BYTES, OutboxPump, Uplink

log = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 2.0  # a clean stop waits at most this long for acknowledgements in flight
COMMAND_QUEUE = 100  # commands waiting for the next step at most; a burst beyond it is dropped on arrival
DROP_LOG_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class ServiceSettings:
    meter_id: str
    measurement_interval: timedelta
    retention: timedelta = timedelta(days=7)
    tick: timedelta = timedelta(milliseconds=500)


class MeterService:
    def __init__(self, settings: ServiceSettings, store: Store, chip: MeteringChip, uplink: Uplink,
                 clock: Clock, *, root_public_key: Ed25519PublicKey | bytes | None = None,
                 confirmation: ConfirmationSettings | None = None, breaker: Breaker | None = None,
                 supply: SupplyWatch | None = None) -> None:
        """``root_public_key``: the registry's key (trust anchor) for signed commands; ``confirmation``:
        embodiment 4 (off by default); ``breaker``: the relay driver, or None if none is fitted;
        ``supply``: the last gasp's watch, which also sees every chip read for its voltage signal."""
        self.settings = settings
        self.store = store
        self.chip = chip
        self.clock = clock
        self.sender = Sender(store, settings.meter_id)
        self.measurer = Measurer(store, settings.meter_id, settings.measurement_interval)
        self.switcher = Switcher(store, self.sender)
        self.contract_state = ContractStatePublisher(store, settings.meter_id)
        self.breaker = BreakerControl(store, breaker, clock)
        self.confirmer = Confirmer(confirmation or ConfirmationSettings(), store, self.sender, settings.meter_id,
                                   root_public_key, self.breaker, clock)
        self.documents = (DocumentIntake(MeterAPI(store, settings.meter_id, settings.measurement_interval, clock),
                                         root_public_key) if root_public_key is not None else None)
        self.remote_breaker = (RemoteBreaker(store, settings.meter_id, root_public_key, clock)
                               if root_public_key is not None else None)
        self._commands: "queue.Queue[bytes]" = queue.Queue(COMMAND_QUEUE)
        self.commands_dropped = 0  # too large, or the queue was full
        self._drop_logged: datetime | None = None
        self.pump = OutboxPump(store, uplink, gate=self.confirmer.allows_row if self.confirmer.enabled else None)
        self.uplink = uplink
        self.supply = supply
        self.reading_listeners: list[Callable[[Reading], None]] = []  # e.g. Home Assistant, after each commit
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
                self.store.put_contract(replace(c, since=now, change_id=None))
            self.store.set_meta("commissioned", True)
        log.info("commissioned with %d contract(s)", len(contracts))

    def submit_command(self, payload: bytes) -> None:
        """A command from ``meters/{id}/commands`` (any thread, e.g. the MQTT uplink's ``on_command``);
        it is handled on the service thread at the next step. One over :data:`MAX_COMMAND_BYTES`, or
        arriving while :data:`COMMAND_QUEUE` wait already, is dropped here (the newest is the one lost)."""
        if len(payload) > MAX_COMMAND_BYTES:
            self._dropped(f"a command of {len(payload)} bytes (more than {MAX_COMMAND_BYTES})")
            return
        try:
            self._commands.put_nowait(bytes(payload))
        except queue.Full:
            self._dropped(f"a command: {COMMAND_QUEUE} already wait")

    def _dropped(self, what: str) -> None:
        """Count a dropped command; log at most once a minute (a flood must not flood the log too)."""
        self.commands_dropped += 1
        now = self.clock.now()
        if self._drop_logged is None or not timedelta(0) <= now - self._drop_logged < DROP_LOG_EVERY:
            self._drop_logged = now
            log.warning("dropped %s; %d command(s) dropped since start", what, self.commands_dropped)

    def step(self) -> Reading | None:
        now = self.clock.now()
        self._handle_commands(now)
        self.breaker.apply_requests()
        reading = self._measure_if_due(now)
        if self.supply is not None:
            self.supply.poll(self._sample)
        for due in self.switcher.due(now):
            if not self.confirmer.allows_switch(due, now):
                continue  # S804 waits for the company's confirmation (embodiment 4)
            # A switch inside the running window closes it first, so the reading before the switch
            # goes to the outgoing company and the one after it to the incoming one: no gap, no
            # overlap. (A switch on a window boundary needs no extra reading.)
            self._close_window(due.occurrence, now)
            self.switcher.apply(due, now)
        self.confirmer.tick(now)
        self.contract_state.publish_if_changed(now)  # for the customer's page (embodiment 3)
        self.pump.pump(now)
        self.confirmer.after_pump()
        self.breaker.publish()
        self._note_link()
        self._prune(now)
        return reading

    def _handle_commands(self, now: datetime) -> None:
        while True:
            try:
                payload = self._commands.get_nowait()
            except queue.Empty:
                return
            kind = command_type(payload)
            if kind == "confirm":
                self.confirmer.on_confirm(payload, now)
            elif kind == "contract_change" and self.documents is not None:
                self.documents.submit_command(payload)
            elif kind == "breaker" and self.remote_breaker is not None:
                self.remote_breaker.submit(payload)  # applied below, with the installer's requests
            elif kind in ("contract_change", "breaker"):
                log.warning("ignored a remote %s: no trust anchor configured (trust.registry_public_key)", kind)
            else:
                log.warning("ignored a command of unknown type %r", kind)

    def _note_link(self) -> None:
        """Keep the link state in the store, so the CLI and the UI can show it (only on change)."""
        state = self.uplink.state()
        if state != self._link:
            self._link = state
            self.store.set_meta("link", {"connected": state.connected, "detail": state.detail,
                                         "problem": state.problem.value})

    def _measure_if_due(self, now: datetime) -> Reading | None:
        end = self.measurer.due(now)
        if end is None:
            return None
        return self._record(self._sample(), end, now)

    def _close_window(self, occurrence: datetime, now: datetime) -> None:
        last = self.measurer.last_end
        if last is None or (last < occurrence and now > last):
            self._record(self._sample(), now, now)

    def _sample(self):
        sample = self.chip.read_sample()
        if self.supply is not None:
            self.supply.observe(sample)  # its voltage: the last gasp's second signal
        return sample

    def _record(self, sample, end: datetime, now: datetime) -> Reading | None:
        # The bus read happens before the transaction; the reading and everything owed to the
        # companies for it commit together.
        with self.store.transaction():
            reading = self.measurer.record(sample, end)
            if reading is not None:
                self.sender.queue_reading(reading, self.store.contracts(), now)
        if reading is not None:
            for listener in self.reading_listeners:
                try:
                    listener(reading)
                except Exception:  # a household's add-on must never stop the meter
                    log.exception("reading listener failed")
        return reading

    def _prune(self, now: datetime) -> None:
        if self._last_prune and now - self._last_prune < timedelta(hours=1) and now >= self._last_prune:
            return
        self._last_prune = now
        n = self.store.prune_readings(now - self.settings.retention)
        a = self.store.prune_alerts(now - self.settings.retention)
        if n or a:
            log.info("pruned %d readings and %d alerts older than the %s retention", n, a, self.settings.retention)

    def run(self, stop: threading.Event, heartbeat: Callable[[], None] | None = None) -> None:
        """Run until ``stop`` is set. A failing step is logged and retried: the meter never stops measuring.
        ``heartbeat`` is called after every step (the service manager's watchdog: a hung step stops it).
        On stop, the acknowledgements still on their way are waited for briefly and recorded."""
        tick = self.settings.tick.total_seconds()
        while not stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("meter step failed; retrying next tick")
            if heartbeat is not None:
                heartbeat()
            stop.wait(tick)
        self.settle()

    def settle(self, timeout: float = SETTLE_TIMEOUT_S) -> None:
        """After the last step: record the acknowledgements that arrive within ``timeout`` seconds, so
        a clean stop does not make the next start send those rows again."""
        pending = self.pump.in_flight
        recorded = self.pump.settle(timeout)
        if pending:
            log.info("stopping: %d of %d message(s) in flight acknowledged", recorded, pending)
