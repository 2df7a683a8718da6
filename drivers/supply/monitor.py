"""A "power good" input on a Raspberry Pi GPIO pin (gpiozero): a UPS HAT's power-good or
low-battery line, or a supply-monitor comparator watching the 5 V rail ahead of the hold-up
supercapacitor. ``active_high`` is the pin's level while the supply is good; ``pull_up`` selects
the Pi's internal pull-up (for an open-drain output, e.g. a TPS3808's) instead of the pull-down.

gpiozero calls back on its own thread the moment the edge is seen; the callback goes straight to
:meth:`appliance.supply.SupplyWatch.report`, which publishes without waiting for the service's step.
Emulation and tests use ``MockFactory``: ``factory.pin(n).drive_low()`` cuts the supply.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from gpiozero import DigitalInputDevice

log = logging.getLogger(__name__)


class GpioSupplyMonitor:
    def __init__(self, pin: int | str, *, active_high: bool = True, pull_up: bool = False,
                 pin_factory: Any = None) -> None:
        self.pin = pin
        self.device = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=pin_factory)
        # gpiozero calls a pulled-up input active when low; "good" is the configured level instead
        self._good_when_active = active_high != pull_up

    @property
    def good(self) -> bool:
        return bool(self.device.is_active) == self._good_when_active

    def start(self, on_change: Callable[[bool], None]) -> None:
        """Call ``on_change(good)`` now with the present level, then at every edge."""
        self.device.when_activated = lambda *_: on_change(self._good_when_active)
        self.device.when_deactivated = lambda *_: on_change(not self._good_when_active)
        on_change(self.good)
        log.info("supply monitor on pin %s: supply %s at start", self.pin, "good" if self.good else "NOT good")

    def close(self) -> None:
        self.device.when_activated = self.device.when_deactivated = None
        self.device.close()
