"""A metering-chip emulator that speaks real Modbus, over TCP or RTU on a serial device.

:class:`ChipEmulator` holds a simulated household (:class:`~drivers.modbus.load_profile.LoadProfile`)
behind a chip's register map (:class:`~drivers.modbus.profiles.ChipProfile`) and serves it with a
pymodbus server, so the driver under test goes through real frames, real CRCs and real timeouts.

* Energy registers only grow. Power is integrated lazily, on each read, over the clock's elapsed
  time in steps of at most ``step_s`` (60 s), so jumping a :class:`~appliance.clock.ManualClock`
  a whole day ahead still gives the day's energy. A clock set backwards adds nothing.
* A chip that measures direction (SDM) accumulates import and export separately; one that does
  not (PZEM-004T) shows the magnitude of the power and counts both directions as energy, as the
  real chip does.
* Reads outside the chip's map answer exception 2 (illegal data address); up to 80 registers per
  read where the map allows. Requests for other addresses are ignored, as on a shared RS-485 bus.
* :attr:`ChipEmulator.faults` injects faults at frame level, at run time: ``no_answer`` (the reply
  is never sent: the master times out), ``bad_crc`` (RTU: the reply's CRC is corrupted; TCP has no
  CRC, so the MBAP protocol identifier is garbled instead, which a master must also reject) and
  ``exception`` (exception 4, slave device failure), each until cleared or for the next N requests.

Run it in the foreground (:meth:`~ChipEmulator.serve_tcp`, :meth:`~ChipEmulator.serve_rtu`: the
CLI) or in a background thread (:meth:`~ChipEmulator.start_tcp`, :meth:`~ChipEmulator.start_rtu`,
:meth:`~ChipEmulator.stop`: tests and the demo).
"""
from __future__ import annotations

import asyncio
import logging
import math
import signal
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from appliance.clock import Clock
from appliance.errors import MeterError

from .faults import Faults
from .load_profile import LoadProfile, PowerState
from .profiles import ChipProfile

log = logging.getLogger(__name__)

PZEM_DEFAULT_ALARM_W = 23000  # the PZEM-004T 100 A's power-alarm threshold out of the box


def electrical_quantities(
    state: PowerState, profile: ChipProfile
) -> dict[str, float]:
    """The instantaneous register quantities (by map name) the chip would show in ``state``."""
    power = state.net_w if profile.measures_direction else abs(state.net_w)
    pf = state.power_factor if abs(state.net_w) > 0 else (1.0 if state.supply_on else 0.0)
    volts = state.voltage_v
    current = abs(state.net_w) / (volts * pf) if volts > 0 and pf > 0 else 0.0
    apparent = volts * current
    reactive = math.sqrt(max(0.0, apparent**2 - state.net_w**2))
    angle = math.degrees(math.acos(min(1.0, pf))) if state.net_w else 0.0
    out = {
        "voltage_v": volts,
        "current_a": current,
        "power_w": power,
        "apparent_va": apparent,
        "reactive_var": reactive,
        "power_factor": pf,
        "phase_angle_deg": angle,
        "frequency_hz": state.frequency_hz,
        "mean_current_a": current / profile.phases,
    }
    if profile.phases > 1:
        # A balanced split; the phases' voltages differ by a few tenths as on a real feeder.
        for i in range(1, profile.phases + 1):
            offset = (i - 2) * 0.15 if volts else 0.0
            out[f"l{i}_voltage_v"] = volts + offset
            out[f"l{i}_current_a"] = current / profile.phases
            out[f"l{i}_power_w"] = power / profile.phases
            out[f"l{i}_apparent_va"] = apparent / profile.phases
            out[f"l{i}_reactive_var"] = reactive / profile.phases
            out[f"l{i}_power_factor"] = pf
            out[f"l{i}_phase_angle_deg"] = angle
    return out


class ChipEmulator:
    """One emulated metering chip on one bus (TCP or RTU), driven by a clock and a load profile."""

    def __init__(
        self,
        profile: ChipProfile,
        clock: Clock,
        load: LoadProfile | None = None,
        address: int | None = None,
        import_wh: float = 0.0,
        export_wh: float = 0.0,
        step_s: float = 60.0,
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.load = load if load is not None else LoadProfile(solar=profile.measures_direction)
        self.address = profile.factory_address if address is None else address
        if not 1 <= self.address <= 247 and self.address != profile.general_address:
            raise MeterError(f"a chip's Modbus address must be 1..247, not {self.address}")
        if step_s <= 0 or step_s > 60:
            raise ValueError("the integration step must be in (0, 60] seconds")
        self.step_s = step_s
        self.faults = Faults()
        self.alarm_threshold_w = PZEM_DEFAULT_ALARM_W
        self.requests = 0  # requests addressed to this chip
        self._import_wh = float(import_wh)
        self._export_wh = float(export_wh)
        self._last: datetime | None = None
        self._lock = threading.Lock()
        self._pending: dict[tuple[int, int], str] = {}
        self._fate: str | None = None
        self._rtu = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.port: int | None = None  # the TCP port actually bound (useful with port 0)

    # -- the simulated meter ------------------------------------------------------------------
    @property
    def device_ids(self) -> frozenset[int]:
        """The addresses this chip answers: its own, and the PZEM's general address 0xF8."""
        ids = {self.address}
        if self.profile.general_address is not None:
            ids.add(self.profile.general_address)
        return frozenset(ids)

    def _integrate(self, now: datetime) -> None:
        """Bring the energy registers up to ``now`` (call with the lock held)."""
        if self._last is None or now < self._last:
            self._last = now  # first read, or the clock was set back: energy never runs backwards
            return
        elapsed = (now - self._last).total_seconds()
        if elapsed <= 0:
            return
        steps = max(1, math.ceil(elapsed / self.step_s))
        width = elapsed / steps
        for i in range(steps):
            net = self.load.net_w(self._last + timedelta(seconds=(i + 0.5) * width))
            wh = net * width / 3600
            if not self.profile.measures_direction:
                self._import_wh += abs(wh)  # the chip cannot tell direction: it counts both
            elif wh >= 0:
                self._import_wh += wh
            else:
                self._export_wh -= wh
        self._last = now

    @property
    def totals(self) -> tuple[float, float]:
        """(import Wh, export Wh) as of now."""
        with self._lock:
            self._integrate(self.clock.now())
            return self._import_wh, self._export_wh

    def measure(self) -> dict[str, float]:
        """Every quantity of the register map as of now (integrating energy up to now)."""
        now = self.clock.now()
        with self._lock:
            self._integrate(now)
            state = self.load.state(now)
            values = electrical_quantities(state, self.profile)
            values["import_wh_total"] = self._import_wh
            values["export_wh_total"] = self._export_wh
            values["total_wh"] = self._import_wh + self._export_wh
        over = values["power_w"] >= self.alarm_threshold_w
        values["alarm"] = 0xFFFF if over else 0
        return values

    # Overrides that first settle the energy so far, so the change applies from now on.
    def set_load_w(self, watts: float | None) -> None:
        with self._lock:
            self._integrate(self.clock.now())
            self.load.set_load_w(watts)

    def set_solar_w(self, watts: float | None) -> None:
        with self._lock:
            self._integrate(self.clock.now())
            self.load.set_solar_w(watts)

    def set_supply(self, on: bool) -> None:
        with self._lock:
            self._integrate(self.clock.now())
            self.load.set_supply(on)

    # -- the pymodbus device ------------------------------------------------------------------
    def _holding_values(self) -> dict[str, float]:
        return {"alarm_threshold_w": self.alarm_threshold_w, "address": self.address}

    def _simdata(self) -> tuple[list[SimData], ...]:
        inputs = [
            SimData(start, count=count, values=0, datatype=DataType.REGISTERS)
            for start, count in self.profile.served
        ]
        holding = [
            SimData(r.address, values=0, datatype=DataType.REGISTERS, readonly=r.name == "address")
            for r in self.profile.holding
        ] or [SimData(0, datatype=DataType.INVALID)]
        no_bits = [SimData(0, values=False, datatype=DataType.BITS)]
        return (no_bits, list(no_bits), holding, inputs)

    async def _on_access(
        self,
        function: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering: refresh the registers from the simulation."""
        if function == 0x04:
            for addr, word in self.profile.image(self.measure()).items():
                registers[addr - start] = word
        elif function == 0x03:
            for reg in self.profile.holding:
                registers[reg.address - start] = reg.encode(self._holding_values()[reg.name])[0]
        elif function in (0x06, 0x10) and values:
            for i, value in enumerate(values):
                if address + i == 0x0001 and self.profile.holding:
                    self.alarm_threshold_w = int(value)
        return None

    def _devices(self) -> list[SimDevice]:
        ids = sorted(self.device_ids)
        # Device 0 catches every other address so pymodbus does not fail the lookup; its replies
        # are dropped in _trace_pdu, which keeps a foreign address silent as on a real bus.
        return [SimDevice(i, simdata=self._simdata(), action=self._on_access) for i in [0, *ids]]

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        key = (pdu.dev_id, pdu.transaction_id)
        if not sending:
            if len(self._pending) > 256:
                self._pending.clear()
            self._pending[key] = f"fc 0x{pdu.function_code:02X} 0x{pdu.address:04X}+{pdu.count}"
            return pdu
        request = self._pending.pop(key, f"fc 0x{pdu.function_code & 0x7F:02X}")
        if pdu.dev_id not in self.device_ids:
            self._fate = "ignore"
            log.debug("ignored %s for address %d: not this chip", request, pdu.dev_id)
            return pdu
        self.requests += 1
        self._fate = self.faults.take()
        if self._fate == "exception":
            pdu = ExceptionResponse(
                pdu.function_code & 0x7F,
                ExcCodes.DEVICE_FAILURE,
                device_id=pdu.dev_id,
                transaction=pdu.transaction_id,
            )
        if self._fate in ("no_answer", "bad_crc"):
            outcome = f"fault {self._fate}"
        elif pdu.isError():
            outcome = f"exception 0x{pdu.exception_code:02X}"  # type: ignore[attr-defined]
        else:
            outcome = f"{len(pdu.registers or pdu.bits)} values"
        log.debug("address %d %s -> %s", pdu.dev_id, request, outcome)
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        fate, self._fate = self._fate, None
        if fate in ("ignore", "no_answer"):
            return b""  # nothing goes on the wire
        if fate == "bad_crc":
            if self._rtu:
                return data[:-2] + bytes(b ^ 0x5A for b in data[-2:])
            return data[:2] + b"\xde\xad" + data[4:]  # MBAP protocol id must be 0
        return data

    # -- serving ------------------------------------------------------------------------------
    def _tcp_server(self, host: str, port: int) -> Callable[[], ModbusTcpServer]:
        def make() -> ModbusTcpServer:
            self._rtu = False
            return ModbusTcpServer(
                self._devices(),
                address=(host, port),
                trace_pdu=self._trace_pdu,
                trace_packet=self._trace_packet,
            )

        return make

    def _rtu_server(self, device: str, baud: int | None, parity: str) -> Callable[[], ModbusSerialServer]:
        def make() -> ModbusSerialServer:
            self._rtu = True
            return ModbusSerialServer(
                self._devices(),
                port=device,
                baudrate=baud or self.profile.default_baud,
                bytesize=8,
                parity=parity,
                stopbits=1,
                trace_pdu=self._trace_pdu,
                trace_packet=self._trace_packet,
            )

        return make

    async def _run(self, make: Callable[[], ModbusTcpServer | ModbusSerialServer], where: str) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = make()
        try:
            await server.serve_forever(background=True)
        except RuntimeError:
            tcp = isinstance(server, ModbusTcpServer)
            hint = "is the port free?" if tcp else "does the serial device exist, and is it free?"
            raise MeterError(
                f"cannot serve the {self.profile.name} emulator on {where}: {hint}"
            ) from None
        if isinstance(server, ModbusTcpServer) and server.transport is not None:
            self.port = server.transport.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            where = f"{where.rsplit(':', 1)[0]}:{self.port}"  # the real port when asked for 0
        log.info("emulating %s at address %d on %s", self.profile.name, self.address, where)
        self._ready.set()
        if threading.current_thread() is threading.main_thread():
            # Foreground (CLI, systemd, the demo): SIGTERM stops as cleanly as Ctrl-C.
            self._loop.add_signal_handler(signal.SIGTERM, self._stop_event.set)
        try:
            await self._stop_event.wait()
        finally:
            await server.shutdown()

    def serve_tcp(self, host: str = "0.0.0.0", port: int = 502) -> None:
        """Serve Modbus TCP in the foreground until :meth:`stop` or Ctrl-C."""
        asyncio.run(self._run(self._tcp_server(host, port), f"Modbus TCP {host}:{port}"))

    def serve_rtu(self, device: str, baud: int | None = None, parity: str = "N") -> None:
        """Serve Modbus RTU on a serial device in the foreground until :meth:`stop` or Ctrl-C."""
        where = f"Modbus RTU {device} {baud or self.profile.default_baud} 8{parity}1"
        asyncio.run(self._run(self._rtu_server(device, baud, parity), where))

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0, timeout: float = 5.0) -> int:
        """Serve Modbus TCP in a background thread; returns the bound port once listening."""
        self._start(self._tcp_server(host, port), f"Modbus TCP {host}:{port}", timeout)
        assert self.port is not None
        return self.port

    def start_rtu(
        self, device: str, baud: int | None = None, parity: str = "N", timeout: float = 5.0
    ) -> None:
        """Serve Modbus RTU in a background thread; returns once the port is open."""
        where = f"Modbus RTU {device} {baud or self.profile.default_baud} 8{parity}1"
        self._start(self._rtu_server(device, baud, parity), where, timeout)

    def _start(self, make: Callable, where: str, timeout: float) -> None:
        if self._thread is not None:
            raise RuntimeError("this emulator is already serving")
        self._ready.clear()
        self._error = None

        def run() -> None:
            try:
                asyncio.run(self._run(make, where))
            except BaseException as exc:  # handed to the starting thread
                self._error = exc
            finally:
                self._ready.set()

        self._thread = threading.Thread(target=run, name=f"emulator-{self.profile.name}", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise MeterError(f"the {self.profile.name} emulator did not start on {where}")
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise self._error

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving (foreground or background); idempotent."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop has just closed
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            self._thread = None
        self._loop = self._stop_event = None
        self.port = None

    def __enter__(self) -> ChipEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
