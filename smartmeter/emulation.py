"""The whole system in emulation, in one process: a private Mosquitto, the metering-chip emulator
on Modbus TCP, the meter service, and example company servers. Used by ``smartmeter demo`` and the
UI's desktop emulation. Every part speaks its real protocol; only the hardware is emulated.
"""
from __future__ import annotations

import logging
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from appliance.api import MeterAPI
from appliance.clock import JST, ScaledClock
from appliance.datatypes import parse_data_types
from appliance.domain import Company, Contract, Role
from appliance.mqtt import MqttUplink
from appliance.service import MeterService, ServiceSettings
from appliance.store import Store
from cloud.company_server import CompanyServer
from drivers.modbus.bridge import ModbusEndpoint, quiet_pymodbus
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile

from .mosquitto import LocalMosquitto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoCompany:
    code: str
    name: str
    role: Role
    data_types: str
    send_interval: timedelta | None = None  # None: the measurement interval
    menu: str | None = None
    commissioned: bool = True


DEMO_COMPANIES = (
    DemoCompany("TEPCO-EP", "東京電力エナジーパートナー", Role.SUPPLY, "time,power,energy,export_energy,totals",
                menu="従量電灯B"),
    DemoCompany("ENEOS-P", "ENEOSでんき", Role.SUPPLY, "time,energy,export_energy", commissioned=False),
    DemoCompany("HEMS-LAB", "HEMSラボ", Role.DATA, "time,power", send_interval=timedelta(minutes=15)),
)


@dataclass
class EmulatedSystem:
    workdir: Path
    meter_id: str = "DEMO-0001"
    profile: str = "sdm120"
    interval: timedelta = timedelta(minutes=1)
    speed: float = 60.0
    start: datetime | None = None
    companies: tuple[DemoCompany, ...] = DEMO_COMPANIES
    servers: dict[str, CompanyServer] = field(default_factory=dict)

    def start_all(self) -> "EmulatedSystem":
        quiet_pymodbus()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = ScaledClock(self.start, self.speed)
        self.broker = LocalMosquitto(workdir=Path(tempfile.mkdtemp(prefix="demo-broker-"))).start()
        self.emulator = ChipEmulator(get_profile(self.profile), self.clock)
        port = self.emulator.start_tcp()
        self.chip = ModbusMeteringChip(get_profile(self.profile), ModbusEndpoint.tcp("127.0.0.1", port, timeout=0.5),
                                       clock=self.clock, retries=1, backoff=0.05)
        for c in self.companies:
            self.servers[c.code] = CompanyServer(c.code, self.broker.host, self.broker.port,
                                                 self.workdir / f"company-{c.code}.sqlite3").start()
        self.store = Store(self.workdir / "meter.sqlite3")
        self.uplink = MqttUplink(self.meter_id, self.broker.host, self.broker.port, self.clock, will_delay=5)
        settings = ServiceSettings(self.meter_id, self.interval, tick=timedelta(milliseconds=100))
        self.service = MeterService(settings, self.store, self.chip, self.uplink, self.clock)
        self.api = MeterAPI(self.store, self.meter_id, self.interval, self.clock)
        self.service.commission(tuple(
            Contract(c.role, Company(c.code, c.name), parse_data_types(c.data_types),
                     c.send_interval or self.interval, c.menu)
            for c in self.companies if c.commissioned))
        self.uplink.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,), name="meter", daemon=True)
        self._thread.start()
        return self

    def stop_all(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.uplink.stop()
        for s in self.servers.values():
            s.stop()
        self.emulator.stop()
        self.chip.close()
        self.broker.stop()


def demo_start_time() -> datetime:
    """Today 05:30 JST: the demo's simulated day opens just before the morning peak."""
    today = datetime.now(JST).date()
    return datetime(today.year, today.month, today.day, 5, 30, tzinfo=JST)
