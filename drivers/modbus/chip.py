"""The metering-chip driver (measurement unit 53): one :class:`Sample` per block read.

:class:`ModbusMeteringChip` joins a :class:`~drivers.modbus.profiles.ChipProfile` (what the
registers mean) to a :class:`~drivers.modbus.bridge.ModbusBridge` (how to reach them). It
implements :class:`appliance.interfaces.MeteringChip`: a bus fault never raises, it retries with
exponential backoff and, when every attempt failed, returns ``Sample(ok=False, error=...)`` naming
the fault. It never makes up a value.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from appliance.clock import Clock, SystemClock
from appliance.config import valid_modbus_address
from appliance.domain import Sample
from appliance.errors import ConfigError

from .bridge import (
    BusConnectionError,
    BusExceptionReply,
    BusFault,
    BusFrameError,
    ModbusBridge,
    ModbusEndpoint,
)
from .profiles import ChipProfile

log = logging.getLogger(__name__)

# What the installer should look at, by fault kind.
_HINTS = {
    "timeout": "check the chip's power, the A/B wiring, its address and the baud rate",
    "crc": "check the A/B wiring, the termination and the baud/parity setting",
    "exception": "the chip reports an internal failure; power-cycle it if this persists",
    "connection": "check the network address and that the gateway is up",
}
_SERIAL_HINT = "check the device path, that the adapter is plugged in and the dialout permission"
_MAP_HINT = "the chip refused the register map: check that the profile matches the chip"


@dataclass
class FaultCounters:
    """Bus health since the driver started: what the meter service reports and logs."""

    transactions: int = 0  # requests put on the wire
    timeouts: int = 0
    crc_errors: int = 0  # damaged replies: bad CRC on RTU, bad MBAP header on TCP
    exception_replies: int = 0
    connection_errors: int = 0
    retries: int = 0  # attempts after the first one of a sample
    failed_samples: int = 0  # samples returned with ok False

    def count(self, kind: str) -> None:
        attr = {
            "timeout": "timeouts",
            "crc": "crc_errors",
            "exception": "exception_replies",
            "connection": "connection_errors",
        }[kind]
        setattr(self, attr, getattr(self, attr) + 1)

    def snapshot(self) -> FaultCounters:
        return replace(self)


class ModbusMeteringChip:
    """A Modbus metering chip (PZEM-004T, SDM120, SDM630) behind a TCP gateway or an RS-485 port.

    ``retries`` is how many more attempts follow a failed one; the wait before attempt ``k`` (1, 2,
    ...) is ``backoff * 2 ** (k - 1)`` seconds, through ``sleep`` (injectable so tests do not wait).
    """

    def __init__(
        self,
        profile: ChipProfile,
        endpoint: ModbusEndpoint,
        address: int | None = None,
        clock: Clock | None = None,
        retries: int = 3,
        backoff: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if retries < 0 or backoff < 0:
            raise ValueError("retries and backoff must not be negative")
        self.profile = profile
        self.endpoint = endpoint
        self.address = profile.default_address if address is None else address
        if not valid_modbus_address(self.address):
            raise ConfigError(f"a chip's Modbus address is 1..247 (or 0xF8), not {self.address}")
        self.clock: Clock = clock or SystemClock()
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.counters = FaultCounters()
        self.bridge = ModbusBridge(endpoint)

    def describe(self) -> str:
        return f"{self.profile.name} at address {self.address} on {self.endpoint.describe()}"

    def read_sample(self) -> Sample:
        """One sample: one block read per attempt, never an exception for a bus fault."""
        faults: list[BusFault] = []
        sent_before = self.bridge.requests
        sample: Sample | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                self.counters.retries += 1
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                sample = self._read_once()
                break
            except BusFault as fault:
                self.counters.count(fault.kind)
                faults.append(fault)
                log.debug("%s: attempt %d failed: %s", self.describe(), attempt + 1, fault)
            except Exception as exc:  # noqa: BLE001 - the meter loop must never die of a bus read
                log.warning("%s: unexpected error", self.describe(), exc_info=True)
                self.bridge.close()
                unexpected = BusConnectionError(f"unexpected bus error: {exc!r}")
                self.counters.count(unexpected.kind)
                faults.append(unexpected)
        sent = self.bridge.requests - sent_before
        self.counters.transactions += sent
        if sample is not None:
            if faults:
                log.info("%s: read after %d failed attempt(s)", self.describe(), len(faults))
            return replace(sample, transactions=sent)
        self.counters.failed_samples += 1
        error = self._message(faults)
        log.warning("%s", error)
        return Sample(at=self.clock.now(), ok=False, error=error, transactions=sent)

    def _read_once(self) -> Sample:
        at = self.clock.now()
        words = self.bridge.read_registers(
            self.profile.function, self.profile.block_start, self.profile.block_count, self.address
        )
        try:
            return self.profile.decode(words, at)
        except ValueError as exc:  # a reply of the right size that still does not decode
            raise BusFrameError(f"undecodable reply: {exc}") from None

    def _message(self, faults: list[BusFault]) -> str:
        last = faults[-1]
        tally: dict[str, int] = {}
        for fault in faults:
            tally[fault.kind] = tally.get(fault.kind, 0) + 1
        kinds = ", ".join(f"{n} {kind}" for kind, n in tally.items())
        attempts = f"{len(faults)} attempt{'s' if len(faults) > 1 else ''}"
        if len(tally) > 1:
            attempts += f": {kinds}"
        return (
            f"{self.profile.name} at address {self.address} on {self.endpoint.describe()}: "
            f"{last} ({attempts}); {self._hint(last)}"
        )

    def _hint(self, fault: BusFault) -> str:
        if isinstance(fault, BusExceptionReply) and fault.code in (0x01, 0x02, 0x03):
            return _MAP_HINT
        if fault.kind == "connection" and self.endpoint.transport == "serial":
            return _SERIAL_HINT
        return _HINTS[fault.kind]

    def close(self) -> None:
        self.bridge.close()

    def __enter__(self) -> ModbusMeteringChip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
