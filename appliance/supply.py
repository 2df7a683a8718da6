"""The last gasp (JP6794864B2): the meter itself says its supply has gone, before its own power does.

Two signals say whether the supply is good: a "power good" input (a UPS HAT's or a supply-monitor
comparator's, on a GPIO pin: :mod:`drivers.supply`) and the chip's voltage falling below a
threshold. The supply is lost while either says so, and back when both say it is good. On each
change the meter publishes ``power_fail`` or ``power_restored`` on its status topic at once (QoS 1,
retained, straight to the MQTT client, not through the outbox and the step cadence), then journals
the change in the store; what the Pi's hold-up (a supercapacitor or a UPS) must cover is the
publish, so that goes first. The PUBACK's arrival is logged against the hold-up budget.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Callable, Protocol

from .clock import Clock, iso
from .domain import Sample
from .store import Store

log = logging.getLogger(__name__)

GPIO, VOLTAGE = "gpio", "voltage"  # the two signals
RESTORE_MARGIN = 1.05  # the voltage must come back 5% above the threshold: no chatter around it
JOURNAL_KEPT = 50  # supply changes kept in the store's journal


@dataclass(frozen=True)
class SupplySettings:
    voltage_threshold: float | None = None  # volts; None: the chip's voltage is not a signal
    voltage_poll: timedelta = timedelta(seconds=1)
    holdup: timedelta = timedelta(seconds=2)


class StatusLink(Protocol):
    """What the last gasp needs of the uplink: a status published now (:class:`appliance.mqtt.MqttUplink`)."""

    def publish_status(self, state: str, on_ack: Callable[[], None] | None = None) -> None: ...


class SupplyWatch:
    """Combines the signals and sends the last gasp. :meth:`report` may be called on any thread (the
    GPIO library's); :meth:`observe` and :meth:`poll` on the service's."""

    def __init__(self, settings: SupplySettings, store: Store, link: StatusLink, clock: Clock, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.store = store
        self.link = link
        self.clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._signals: dict[str, bool] = {}  # signal -> supply good, once it has said anything
        self._on: bool | None = None  # None until the first signal
        self._last_poll: float | None = None
        self.changes = 0  # published supply changes since start (metrics)

    @property
    def supply_on(self) -> bool | None:
        return self._on

    def report(self, signal: str, good: bool) -> None:
        """A signal says the supply is ``good`` (or not). The first word only sets the state: a meter
        starting on its UPS during a cut says nothing until the supply returns (its ``online`` follows)."""
        with self._lock:
            self._signals[signal] = good
            on = all(self._signals.values())
            before, self._on = self._on, on
        if before is None or on == before:
            if before is None:
                self._journal(on, signal, published=False)
            return
        state = "power_restored" if on else "power_fail"
        t0 = self._monotonic()
        self.link.publish_status(state, on_ack=lambda: self._acked(state, t0))
        self.changes += 1
        log.warning("supply %s (%s signal): published %s", "restored" if on else "LOST", signal, state)
        self._journal(on, signal, published=True)

    def observe(self, sample: Sample) -> None:
        """The chip's voltage as the second signal. A failed read says nothing (a chip powered from the
        mains goes silent in a cut, but so does a loose bus cable: the GPIO input tells them apart)."""
        threshold = self.settings.voltage_threshold
        if threshold is None or not sample.ok or sample.voltage_v is None:
            return
        self._last_poll = self._monotonic()
        good = self._signals.get(VOLTAGE, True)
        if sample.voltage_v < threshold:
            good = False
        elif sample.voltage_v >= threshold * RESTORE_MARGIN:
            good = True
        self.report(VOLTAGE, good)

    def poll(self, read_sample: Callable[[], Sample]) -> None:
        """Read the chip for its voltage when ``voltage_poll`` has passed since the last read seen."""
        if self.settings.voltage_threshold is None:
            return
        if self._last_poll is not None and self._monotonic() - self._last_poll < self.settings.voltage_poll.total_seconds():
            return
        self._last_poll = self._monotonic()
        self.observe(read_sample())

    def _acked(self, state: str, t0: float) -> None:
        ms = (self._monotonic() - t0) * 1000
        budget = self.settings.holdup.total_seconds() * 1000
        if ms > budget:
            log.error("%s acknowledged by the broker after %.0f ms: beyond the %.0f ms hold-up budget", state, ms, budget)
        else:
            log.info("%s acknowledged by the broker after %.0f ms (hold-up budget %.0f ms)", state, ms, budget)

    def _journal(self, on: bool, signal: str, *, published: bool) -> None:
        """The change in the store (meta ``supply`` and a short ``supply_journal``), after the publish."""
        entry = {"on": on, "at": iso(self.clock.now()), "signal": signal, "published": published}
        with self.store.transaction():
            self.store.set_meta("supply", entry)
            self.store.set_meta("supply_journal", (self.store.get_meta("supply_journal", []) + [entry])[-JOURNAL_KEPT:])


def journal(store: Store) -> list[dict]:
    """The supply changes the store keeps, oldest first."""
    return list(store.get_meta("supply_journal", []))
