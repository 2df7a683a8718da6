"""A meter rig built from real parts: the Modbus chip emulator over TCP, the Modbus driver, a real
Mosquitto, the meter service on a simulated clock, and example company servers."""
from __future__ import annotations

import time
from pathlib import Path
from datetime import timedelta

from polling import wait_for

from appliance.config import parse_config
from appliance.datatypes import parse_data_types
from appliance.domain import Action, Company, Contract, ContractChange, Role
from appliance.intake import accept_change
from appliance.schedule import parse_switch_text
from appliance.trust import keys
from cloud.company_server import CompanyServer
from drivers.modbus.bridge import ModbusEndpoint
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile
from smartmeter.assembly import build_meter

METER = "MTR-T1"
HALF_HOUR = timedelta(minutes=30)


class GridOperator:
    """A plain subscriber to meters/+/interval (the MDMS side, on an operator's account), to check
    every reading arrives."""

    def __init__(self, broker):
        from cloud.mqtt import make_client

        self.seqs: list[int] = []
        self.bodies: list[dict] = []
        account = broker.account("operator", "grid-op")
        self.client = make_client(account)
        self.client.on_message = self._on_message
        self.client.connect(account.host, account.port)
        self.client.subscribe("meters/+/interval", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        import json

        body = json.loads(msg.payload)
        self.seqs.append(body["seq"])
        self.bodies.append(body)

    def stop(self):
        self.client.disconnect()
        self.client.loop_stop()


class Rig:
    def __init__(self, tmp_path, broker, clock, profile="sdm120", companies=("A", "B", "D"), rtu=None,
                 company_options=None, service_options=None, meter_link=None):
        """``meter_link``: where the meter reaches the broker (host, port attributes; default the broker
        itself), e.g. a slow proxy in front of it.
        ``rtu``: a (chip side, meter side) pty pair to run the chip on Modbus RTU instead of TCP.
        ``company_options``: code -> extra CompanyServer keyword arguments (key, certificate, answer, ...);
        ``service_options``: extra MeterService keyword arguments (root_public_key, confirmation, breaker),
        or a callable returning them (called at each start, e.g. to build a fresh breaker driver)."""
        self.tmp_path, self.broker, self.clock = tmp_path, broker, clock
        self.meter_link = meter_link or broker
        self.profile, self.rtu = profile, rtu
        self.service_options = service_options or {}
        self.emulator = ChipEmulator(get_profile(profile), clock)
        if rtu:
            self.emulator.start_rtu(rtu[0], baud=9600)
            endpoint = ModbusEndpoint.serial(rtu[1], baud=9600, timeout=0.5)
        else:
            endpoint = ModbusEndpoint.tcp("127.0.0.1", self.emulator.start_tcp(), timeout=0.5)
        self.chip = ModbusMeteringChip(get_profile(profile), endpoint, clock=clock, retries=1, backoff=0.0,
                                       sleep=lambda s: None)
        self.companies = {c: CompanyServer(c, broker.account("company", c), tmp_path / f"{c}.sqlite3",
                                           **(company_options or {}).get(c, {})).start()
                          for c in companies}
        for c in self.companies.values():
            assert c.connected.wait(5)
        self.store_path = tmp_path / "meter.sqlite3"
        self.start_service()

    def start_service(self):
        """Assemble the meter as every meter is assembled (smartmeter.assembly), from a config written
        for this rig, around the rig's own chip (no retry sleeps) and, if given, breaker driver."""
        options = self.service_options() if callable(self.service_options) else self.service_options
        self.meter = build_meter(parse_config(self.config(options), base=self.tmp_path), self.clock, chip=self.chip,
                                 breaker=options.get("breaker"), commission=False)
        self.store, self.uplink, self.service = self.meter.store, self.meter.uplink, self.meter.service
        self.meter.start()  # the uplink, and the supply monitor if configured
        wait_for(lambda: self.uplink.state().connected, what="meter connected")

    def config(self, options):
        """The rig's meter config; ``options`` may carry the registry's key, confirmation settings and a
        ``[supply]`` section (the last gasp)."""
        chip = {"serial": self.rtu[1], "baud": 9600} if self.rtu else {"tcp": f"127.0.0.1:{self.emulator.port}"}
        raw = {"meter": {"id": METER, "measurement_interval": "30m", "retention": "30d", "store": str(self.store_path)},
               "chip": {"profile": self.profile, "timeout": 0.5, **chip},
               "mqtt": {**self.broker.mqtt_section("meter", METER), "host": self.meter_link.host,
                        "port": self.meter_link.port, "will_delay": 0}}
        root = options.get("root_public_key")
        if root is not None:
            key_file = self.tmp_path / "registry.pub"
            key_file.write_bytes(root if isinstance(root, bytes) else keys.public_raw(root))
            raw["trust"] = {"registry_public_key": str(key_file)}
        if options.get("supply") is not None:
            raw["supply"] = options["supply"]
        c = options.get("confirmation")
        if c is not None:
            raw["confirmation"] = {"enabled": c.enabled, "period": c.period.total_seconds(),
                                   "timeout": c.timeout.total_seconds(), "retry_max": c.retry_max.total_seconds(),
                                   "recheck_after": c.recheck_after.total_seconds(), "new_building": c.new_building}
        return raw

    def stop_service(self):
        if self.meter.supply_monitor is not None:
            self.meter.supply_monitor.close()
        self.uplink.stop()
        self.store.close()

    def commission(self, *contracts):
        self.service.commission(tuple(contracts))

    def change(self, kind, action, code, switch, types="", menu=None, send_interval=None):
        ch = ContractChange(kind=Role(kind), action=Action(action), company=Company(code, f"{code}社"),
                            switch=parse_switch_text(switch), data_types=parse_data_types(types) if types else (),
                            menu=menu, send_interval=send_interval)
        return accept_change(self.store, self.service.sender, ch, self.clock.now(), HALF_HOUR)

    def run(self, steps, dt=HALF_HOUR):
        for _ in range(steps):
            self.service.step()
            self.clock.advance(dt)
        self.service.step()

    def drain(self, timeout=20.0):
        """Step (without moving time) until the broker has acknowledged everything released."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.service.step()
            if self.store.outbox_size() == 0 or (self._only_unreleased() and self.service.pump.in_flight == 0):
                return
            time.sleep(0.02)
        raise AssertionError(f"outbox not drained: {self.store.outbox_by_company()}")

    def _only_unreleased(self):
        return not self.store.released(self.clock.now(), 0, 1)

    def received(self, code):
        """Company ``code``'s stored readings, once every entitled reading has arrived."""
        want = len(self.store.entitlements(code))
        wait_for(lambda: len(self.companies[code].data()) >= want, what=f"{code} to receive {want} readings")
        time.sleep(0.05)
        return self.companies[code].data()

    def close(self):
        self.stop_service()
        for c in self.companies.values():
            c.stop()
        self.emulator.stop()
        self.chip.close()


def supply(code, types="time,power,energy", menu=None, send=HALF_HOUR):
    return Contract(Role.SUPPLY, Company(code, f"{code}社"), parse_data_types(types), send, menu)


def data(code, types, send=HALF_HOUR):
    return Contract(Role.DATA, Company(code, f"{code}社"), parse_data_types(types), send)



def subprocess_meter_config(path: Path, broker, chip_port: int, meter_id: str, *, tick: str = "100ms",
                            data: tuple[tuple[str, str, str | None], ...] = ()) -> Path:
    """A meter.toml for ``smartmeter appliance run`` in a process of its own: 1 s windows, the chip
    emulator on ``chip_port``, supply company A, and ``data`` contracts (code, TOML data types, send
    interval or None)."""
    contracts = "".join(f'\n[[contracts.data]]\ncompany = "{code}"\ndata_types = {types}\n'
                        + (f'send_interval = "{send}"\n' if send else "") for code, types, send in data)
    path.write_text(f"""
[meter]
id = "{meter_id}"
measurement_interval = "1s"
tick = "{tick}"
store = "{path.parent / 'meter.sqlite3'}"

[chip]
profile = "sdm120"
tcp = "127.0.0.1:{chip_port}"
timeout = 0.5

{broker.mqtt_toml("meter", meter_id)}will_delay = 0

[contracts.supply]
company = "A"
data_types = ["time", "power", "energy"]
{contracts}""")
    return path
