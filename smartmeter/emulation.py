"""The whole system in emulation: one meter, built from real parts, for the demo, the touch screen's
desktop emulation, the UI tests and the UI benchmark.

Every part speaks its real protocol; only the hardware is emulated:

* the metering chip: :class:`drivers.modbus.emulator.ChipEmulator` on Modbus TCP;
* the broker: a private Mosquitto;
* the meter service (:class:`appliance.service.MeterService`) stepping in a background thread,
  with confirmation (embodiment 4) against the companies' servers and a relay breaker on
  gpiozero's mock pin factory;
* a company server for each example company (:class:`cloud.company_server.CompanyServer`), each
  with a signing key certified by the emulation's registry, answering confirmations;
* contract cards: the example cards are issued at start (``card-NAME.cose`` in the work directory)
  and inserted through the real PC/SC (pcscd + vpcd, slots 1-3) and NFC (nfcpy udp, slot 4)
  emulation.

Run in-process (``smartmeter demo``) or as a process of its own (``python -m smartmeter.emulation``),
which is how the touch screen uses it: as on a real meter, the UI is a separate process that reads
the meter's store through :class:`appliance.api.MeterAPI` and the card readers itself. The process
writes ``emulation.json`` (see :mod:`smartmeter.attach`) and takes the emulation drawer's actions on
a control socket.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from appliance.clock import JST, ScaledClock, SystemClock, iso
from appliance.config import parse_config
from appliance.datatypes import DataType
from appliance.domain import Action, Company, Reading, Role, SwitchTime
from appliance.store import Store
from appliance.trust import issue_certificate, issue_document, keys
from appliance.trust.document import ContractDocument
from cloud.company_server import ANSWER_MODES, CompanyServer

from .assembly import build_meter
from .control import ControlServer

log = logging.getLogger(__name__)

DESCRIPTOR = "emulation.json"


@dataclass(frozen=True)
class EmulatedCompany:
    code: str
    name: str
    role: Role
    data_types: str
    send_every: int = 1  # send interval, in measurement intervals
    menu: str | None = None


COMPANIES: tuple[EmulatedCompany, ...] = (
    EmulatedCompany("TEPCO-EP", "東京電力EP", Role.SUPPLY, "time,power,energy,export_energy,totals", menu="従量電灯B"),
    EmulatedCompany("ENEOS-P", "ENEOSでんき", Role.SUPPLY, "time,energy,export_energy"),
    EmulatedCompany("LOOOP", "Looopでんき", Role.SUPPLY, "time,power,energy"),
    EmulatedCompany("HEMS-LAB", "HEMSラボ", Role.DATA, "time,power", send_every=15),
)


@dataclass(frozen=True)
class ExampleCard:
    """One card the drawer can insert: the company that issues it and the tariff menu it asks for."""

    name: str  # the file stem and the drawer's label
    code: str
    menu: str | None = None
    foreign: bool = False  # certified by a registry this meter does not trust: the meter refuses it


EXAMPLE_CARDS: tuple[ExampleCard, ...] = (
    ExampleCard("tepco", "TEPCO-EP", "従量電灯B"),
    ExampleCard("eneos", "ENEOS-P"),
    ExampleCard("looop", "LOOOP"),
    ExampleCard("tepco-night", "TEPCO-EP", "夜トク8"),
    ExampleCard("hems", "HEMS-LAB"),
    ExampleCard("rogue", "ENEOS-P", foreign=True),
)

@dataclass
class EmulatedSystem:
    workdir: Path
    meter_id: str = "EMU-0001"
    profile: str = "sdm120"
    interval: timedelta = timedelta(seconds=5)
    speed: float = 1.0
    start: datetime | None = None
    commissioned: tuple[str, ...] = ("TEPCO-EP",)
    card_slots: bool = True  # the PC/SC and NFC card emulation
    nfc: bool = True
    confirmation: bool = True
    history_days: int = 0  # earlier days of readings in the store at start, as a meter in service holds
    companies: tuple[EmulatedCompany, ...] = COMPANIES
    servers: dict[str, CompanyServer] = field(default_factory=dict)
    cards: dict[str, bytes] = field(default_factory=dict)

    # -- start / stop ----------------------------------------------------------------------------
    def start_all(self) -> "EmulatedSystem":
        from devkit.mosquitto import LocalMosquitto
        from drivers.modbus.bridge import quiet_pymodbus
        from drivers.modbus.emulator import ChipEmulator
        from drivers.modbus.profiles import get_profile

        quiet_pymodbus()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = SystemClock() if self.speed == 1 and self.start is None else ScaledClock(self.start, self.speed)
        self.started_wall = time.time()
        self.started_sim = self.clock.now()
        self.supply_on, self.broker_up = True, True
        self.inserted: dict[str, str] = {}  # slot -> the example card in it (the drawer shows it)
        self.load_w: float | None = None  # None: the household profile; set by the drawer
        self.solar_w = 0.0
        # the broker as a utility runs it: an account and the ACLs of interfaces.md section 2 per party
        from cloud.broker import Party

        parties = (Party("meter", self.meter_id), *(Party("company", c.code) for c in self.companies))
        self.broker = LocalMosquitto(workdir=Path(tempfile.mkdtemp(prefix="emu-broker-")), parties=parties).start()
        self.emulator = ChipEmulator(get_profile(self.profile), self.clock)
        chip_port = self.emulator.start_tcp()
        self.company_keys = company_keys = self._issue_cards()
        for c in self.companies:
            key, cert = company_keys[c.code]
            self.servers[c.code] = CompanyServer(
                c.code, self.broker.settings(c.code), self.workdir / f"company-{c.code}.sqlite3",
                key=key, certificate=cert, now=self.clock.now,
                records={self.meter_id: list(c.data_types.split(","))} if c.code in self.commissioned else None,
            ).start()
        self.meter = build_meter(parse_config(self.meter_config(chip_port), base=self.workdir), self.clock)
        self.store, self.service, self.uplink, self.api = (self.meter.store, self.meter.service, self.meter.uplink,
                                                           self.meter.api)
        self.chip, self.relay = self.meter.chip, self.meter.breaker
        self._seed_history()
        self.meter.start()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self.meter.run, args=(self._stop,), name="meter", daemon=True),
                         threading.Thread(target=self._wire_breaker, name="breaker-wiring", daemon=True)]
        for t in self._threads:
            t.start()
        for s in self.servers.values():
            s.connected.wait(5)
        if self.card_slots:
            self._start_card_emulation()
        return self

    def meter_config(self, chip_port: int) -> dict[str, Any]:
        """The emulated meter's config, as an installer would write it (validated like one): the chip
        emulator on Modbus TCP, the private broker, the relay and the supply monitor on gpiozero's mock
        pin factory."""
        contracts: dict[str, Any] = {"data": []}
        for c in self.companies:
            if c.code not in self.commissioned:
                continue
            entry = {"company": c.code, "name": c.name, "data_types": c.data_types.split(","),
                     "send_interval": (self.interval * c.send_every).total_seconds()}
            if c.menu:
                entry["menu"] = c.menu
            if c.role is Role.SUPPLY:
                contracts["supply"] = entry
            else:
                contracts["data"].append(entry)
        # Timeouts are simulated time: scale them so a confirmation gets ~10 real seconds at any speed.
        return {
            "meter": {"id": self.meter_id, "measurement_interval": self.interval.total_seconds(),
                      "store": "meter.sqlite3", "tick": "100ms"},
            "chip": {"profile": self.profile, "tcp": f"127.0.0.1:{chip_port}", "timeout": 0.5},
            "mqtt": {**self.broker.mqtt_section("meter", self.meter_id), "will_delay": 5},
            "trust": {"registry_public_key": "registry.pub"},
            "confirmation": {"enabled": self.confirmation, "timeout": 10 * self.speed,
                             "retry_max": 60 * self.speed, "recheck_after": 60 * self.speed},
            "breaker": {"pin": 17, "pin_factory": "mock", "journal": "breaker.json"},
            "supply": {"pin": 22, "pull_up": True, "pin_factory": "mock"},  # an open-drain "power good" line
            "contracts": contracts,
        }

    def stop_all(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        for part in ("sim", "pcscd"):
            obj = getattr(self, part, None)
            if obj is not None:
                _quietly(obj.close if part == "sim" else obj.stop)
        _quietly(self.meter.close)
        for s in self.servers.values():
            _quietly(s.stop)
        _quietly(self.emulator.stop)
        _quietly(self.broker.stop)

    def _seed_history(self) -> None:
        """Readings for the ``history_days`` JST days before today, in 30-minute windows of the household
        profile the chip emulator plays, so the usage chart has earlier days. They predate the contracts
        here, so no company is owed them; a store that already holds readings is left as it is."""
        if not self.history_days or self.store.last_reading() is not None:
            return
        step = timedelta(minutes=30)
        today = self.clock.now().astimezone(JST).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=self.history_days)
        with self.store.transaction():
            for i in range(self.history_days * 48):
                begin = start + i * step
                net = self.emulator.load.net_w(begin + step / 2)
                self.store.add_reading(Reading(
                    self.meter_id, self.store.next_counter("seq"), begin, begin + step, power_w=round(net, 1),
                    energy_wh=round(max(net, 0.0) / 2, 1), export_wh=round(max(-net, 0.0) / 2, 1)))

    def _start_card_emulation(self) -> None:
        from devkit.pcscd import Pcscd, offered_readers
        from drivers.cards.sim import SIM_SLOTS, CardSimulator

        self.pcscd = None
        if offered_readers() is None:
            self.pcscd = Pcscd(Path(tempfile.mkdtemp(prefix="emu-pcscd-"))).start()
        self.sim = CardSimulator({k: v for k, v in SIM_SLOTS.items() if self.nfc or v.kind == "pcsc"})

    def _wire_breaker(self) -> None:
        """The relay sits between the grid and the house: open, the chip measures no supply."""
        last = None
        while not self._stop.wait(0.1):
            live = self.supply_on and self.relay.state().closed
            if live != last:
                self.emulator.set_supply(live)
                last = live

    # -- the emulation drawer's actions -------------------------------------------------------------
    def insert_card(self, slot: str, card: str) -> None:
        from drivers.cards.sim import card_image

        if card not in self.cards:
            raise ValueError(f"no example card {card!r}; there are {', '.join(self.cards)}")
        if self.sim.remove(slot)["removed"]:
            time.sleep(0.6)  # a hand swapping cards: the reader sees the slot empty before the next card
        self.sim.insert(slot, card_image(self.cards[card]))
        self.inserted[slot] = card

    def remove_card(self, slot: str) -> None:
        self.sim.remove(slot)
        self.inserted.pop(slot, None)

    def set_load(self, watts: float | None) -> None:
        self.emulator.set_solar_w(0.0 if watts is not None else None)
        self.emulator.set_load_w(watts)
        self.load_w, self.solar_w = watts, 0.0

    def set_solar_export(self, watts: float) -> None:
        """Solar generation ``watts`` above a small house load: the meter sees reverse flow."""
        self.emulator.set_load_w(200.0)
        self.emulator.set_solar_w(200.0 + watts)
        self.load_w, self.solar_w = 200.0, watts

    def set_supply(self, on: bool) -> None:
        """Cut or restore the grid supply: the supply monitor's line falls (or rises) on its GPIO, and the
        meter sends its last gasp (``power_fail``) or ``power_restored`` as a real one does."""
        self.supply_on = on
        pin = self.meter.supply_monitor.device.pin
        (pin.drive_high if on else pin.drive_low)()

    def set_broker(self, up: bool) -> None:
        if up and not self.broker_up:
            self.broker.start()
        elif not up and self.broker_up:
            self.broker.stop()
        self.broker_up = up

    def set_breaker(self, open_: bool) -> None:
        """Open or close the breaker as the installer does (``smartmeter appliance breaker open|close
        --override``); the meter service applies the request on its next step."""
        from appliance.breaker import request

        store = Store(self.store.path)  # this runs on the caller's thread: its own connection
        try:
            request(store, "open" if open_ else "close", "emulation drawer", override=True)
        finally:
            store.close()

    def set_answer(self, code: str, mode: str) -> None:
        """How a company's server answers confirmation requests: ``records`` (truthfully), ``wrong`` (a
        spoofed record), ``forged`` (an uncertified key) or ``silent``."""
        if code not in self.servers or mode not in ANSWER_MODES:
            raise ValueError(f"set_answer: {code!r} / {mode!r}: companies {', '.join(self.servers)}; "
                             f"modes {', '.join(ANSWER_MODES)}")
        self.servers[code].answer = mode

    def state(self) -> dict[str, Any]:
        return {"supply_on": self.supply_on, "broker_up": self.broker_up,
                "slots": sorted(self.sim.slots) if getattr(self, "sim", None) else [],
                "cards": [c.name for c in EXAMPLE_CARDS], "card_companies": {c.name: c.code for c in EXAMPLE_CARDS},
                "answers": {code: s.answer for code, s in self.servers.items()},
                "inserted": dict(self.inserted), "load_w": self.load_w, "solar_w": self.solar_w}

    # -- what a separate process needs to attach ----------------------------------------------------
    def descriptor(self, control: str | None = None) -> dict[str, Any]:
        return {"meter_id": self.meter_id, "store": str(self.store.path), "interval_s": self.interval.total_seconds(),
                "clock": {"speed": self.speed, "sim": iso(self.started_sim), "wall": self.started_wall},
                "registry_public_key": self.root_public.hex(), "control": control, "pid": os.getpid(),
                "broker": {"host": self.broker.host, "port": self.broker.port},
                "companies": {c: str(self.workdir / f"company-{c}.sqlite3") for c in self.servers},
                "workdir": str(self.workdir)}

    def desk_company(self, c: EmulatedCompany):
        """What company ``c``'s switching desk offers: the data types and menu its cards carry."""
        from cloud.switch_desk import DeskCompany

        menus = tuple(dict.fromkeys(card.menu for card in EXAMPLE_CARDS
                                    if card.code == c.code and card.menu and not card.foreign))
        return DeskCompany(c.code, c.name, c.role, f"mqtts://{c.code.lower()}.example",
                           tuple(DataType(t) for t in c.data_types.split(",")), menus)

    # -- contracts and cards ----------------------------------------------------------------------
    def _issue_cards(self) -> dict[str, tuple[Any, bytes]]:
        """A registry, a certified key per company, and the example cards. Returns code -> (key, cert)."""
        now = self.clock.now()
        registry, foreign_registry = keys.generate(), keys.generate()
        self.root_public = keys.public_raw(registry)
        (self.workdir / "registry.pub").write_bytes(self.root_public)  # for `smartmeter card verify`
        by_code = {c.code: c for c in self.companies}
        company_keys: dict[tuple[str, bool], tuple[Any, bytes]] = {}
        for c in self.companies:
            for foreign in (False, True):
                key = keys.generate()
                cert = issue_certificate(foreign_registry if foreign else registry, company_code=c.code, name=c.name,
                                         role=c.role, public_key=key.public_key(),
                                         not_before=now - timedelta(days=1), not_after=now + timedelta(days=365))
                company_keys[(c.code, foreign)] = (key, cert)
        for serial, card in enumerate(EXAMPLE_CARDS, start=1):
            c = by_code[card.code]
            key, cert = company_keys[(card.code, card.foreign)]
            doc = ContractDocument(
                kind=c.role, action=Action.CONTRACT, company=Company(c.code, c.name, f"mqtts://{c.code.lower()}.example"),
                data_types=tuple(DataType(t) for t in c.data_types.split(",")), switch=SwitchTime(immediate=True),
                serial=serial, issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(days=30),
                menu=card.menu, meter_id=self.meter_id, send_interval=self.interval)
            self.cards[card.name] = issue_document(doc, company_key=key, certificate=cert)
            (self.workdir / f"card-{card.name}.cose").write_bytes(self.cards[card.name])
        return {code: kc for (code, foreign), kc in company_keys.items() if not foreign}


def publish(system: EmulatedSystem) -> ControlServer:
    """Open the control socket and write the descriptor (atomically: a reader never sees half of it)."""
    control = ControlServer(system)
    tmp = system.workdir / (DESCRIPTOR + ".tmp")
    tmp.write_text(json.dumps(system.descriptor(str(control.path)), ensure_ascii=False, indent=1))
    tmp.replace(system.workdir / DESCRIPTOR)
    return control


def demo_start_time() -> datetime:
    """Today 05:30 JST: the demo's simulated day opens just before the morning peak."""
    today = datetime.now(JST).date()
    return datetime(today.year, today.month, today.day, 5, 30, tzinfo=JST)


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.debug("stopping %s failed", fn, exc_info=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m smartmeter.emulation --workdir DIR``: run the emulated system until SIGTERM/SIGINT."""
    from appliance.config import parse_duration

    p = argparse.ArgumentParser(prog="python -m smartmeter.emulation", description=main.__doc__)
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--interval", default="5s", help="measurement interval (default 5s)")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--no-nfc", action="store_true", help="PC/SC slots 1-3 only")
    p.add_argument("--load", type=float, help="a steady load in W instead of the household profile")
    p.add_argument("--history-days", type=int, default=2,
                   help="earlier days of readings (30-minute windows) in a new store (default 2)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    (a.workdir / DESCRIPTOR).unlink(missing_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    system = EmulatedSystem(a.workdir, interval=parse_duration(a.interval, "--interval"), speed=a.speed,
                            nfc=not a.no_nfc, history_days=a.history_days).start_all()
    if a.load is not None:
        system.set_load(a.load)
    control = publish(system)
    log.info("emulated meter %s: broker 127.0.0.1:%s, files in %s", system.meter_id, system.broker.port, a.workdir)
    try:
        stop.wait()
    finally:
        control.close()
        (a.workdir / DESCRIPTOR).unlink(missing_ok=True)
        system.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
