"""A running meter for the desktop emulation (``smartmeter ui --emulate``) and the UI tests.

Built from real parts, as ``tests/appliance/meter_rig.py`` does: the Modbus chip emulator over
Modbus TCP, a private Mosquitto, the meter service on the system clock stepping in a background
thread, example company servers, and the contract card slots through the real PC/SC emulation
(pcscd + vpcd, slots 1-3) and NFC emulation (nfcpy udp, slot 4). A small registry and a few
companies issue the example cards the emulation drawer inserts.
"""
from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from appliance.api import MeterAPI
from appliance.clock import SystemClock
from appliance.datatypes import DataType, parse_data_types
from appliance.domain import Action, Company, Contract, Role, SwitchTime
from appliance.mqtt import MqttUplink
from appliance.service import MeterService, ServiceSettings
from appliance.store import Store
from appliance.trust import issue_certificate, issue_document, keys, verify_document
from appliance.trust.document import ContractDocument
from cloud.company_server import CompanyServer
from smartmeter.mosquitto import LocalMosquitto

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExampleCard:
    """One card the drawer can insert: which company issues it, and what it asks for."""

    name: str  # the file stem and the drawer's label
    code: str
    company: str
    role: Role
    data_types: str
    menu: str | None = None
    foreign: bool = False  # certified by a registry this meter does not trust: the meter refuses it


EXAMPLE_CARDS: tuple[ExampleCard, ...] = (
    ExampleCard("tepco", "TEPCO-EP", "東京電力EP", Role.SUPPLY, "time,power,energy,totals", menu="従量電灯B"),
    ExampleCard("eneos", "ENEOS-P", "ENEOSでんき", Role.SUPPLY, "time,energy,export_energy"),
    ExampleCard("looop", "LOOOP", "Looopでんき", Role.SUPPLY, "time,power,energy"),
    ExampleCard("tepco-night", "TEPCO-EP", "東京電力EP", Role.SUPPLY, "time,power,energy,totals", menu="夜トク8"),
    ExampleCard("hems", "HEMS-LAB", "HEMSラボ", Role.DATA, "time,power"),
    ExampleCard("rogue", "ENEOS-P", "ENEOSでんき", Role.SUPPLY, "time,power,energy", foreign=True),
)

COMMISSIONED = (
    Contract(Role.SUPPLY, Company("TEPCO-EP", "東京電力EP"), parse_data_types("time,power,energy,totals"),
             timedelta(seconds=5), "従量電灯B"),
)


@dataclass
class EmulatedMeter:
    workdir: Path
    meter_id: str = "EMU-0001"
    interval: timedelta = timedelta(seconds=5)
    profile: str = "sdm120"
    nfc: bool = True
    servers: dict[str, CompanyServer] = field(default_factory=dict)
    cards: dict[str, bytes] = field(default_factory=dict)

    # -- start / stop ----------------------------------------------------------------------------
    def start(self) -> "EmulatedMeter":
        from drivers.modbus.bridge import ModbusEndpoint, quiet_pymodbus
        from drivers.modbus.chip import ModbusMeteringChip
        from drivers.modbus.emulator import ChipEmulator
        from drivers.modbus.profiles import get_profile

        quiet_pymodbus()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.clock = SystemClock()
        self.broker = LocalMosquitto(workdir=Path(tempfile.mkdtemp(prefix="ui-broker-"))).start()
        self.emulator = ChipEmulator(get_profile(self.profile), self.clock)
        port = self.emulator.start_tcp()
        self.chip = ModbusMeteringChip(get_profile(self.profile), ModbusEndpoint.tcp("127.0.0.1", port, timeout=0.5),
                                       clock=self.clock, retries=1, backoff=0.05)
        self._issue_cards()
        for code in sorted({c.code for c in EXAMPLE_CARDS}):
            self.servers[code] = CompanyServer(code, self.broker.host, self.broker.port,
                                               self.workdir / f"company-{code}.sqlite3").start()
        self.store = Store(self.workdir / "meter.sqlite3")
        self.uplink = MqttUplink(self.meter_id, self.broker.host, self.broker.port, self.clock, will_delay=5)
        settings = ServiceSettings(self.meter_id, self.interval, tick=timedelta(milliseconds=200))
        self.service = MeterService(settings, self.store, self.chip, self.uplink, self.clock)
        self.service.commission(tuple(replace_send(c, self.interval) for c in COMMISSIONED))
        self.api = MeterAPI(Store(self.store.path), self.meter_id, self.interval, self.clock)
        self.uplink.start()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,), name="meter", daemon=True)
        self._thread.start()
        for s in self.servers.values():
            s.connected.wait(5)
        self.broker_up = True
        self.supply_on = True
        return self

    def verify(self, raw: bytes) -> Any:
        """The core's check of a card document, for :class:`ui.model.CardSlots`."""
        return verify_document(raw, root_public_key=self.root_public, meter_id=self.meter_id, now=self.clock.now(),
                               last_serial=self.api.store.last_serial)

    def start_card_slots(self, callbacks) -> None:
        """The real PC/SC (slots 1-3) and NFC (slot 4) emulation, reporting to ``callbacks``."""
        from drivers.cards.nfc import NfcSlot
        from drivers.cards.pcsc import PcscSlots
        from drivers.cards.pcscd import Pcscd, list_readers, reader_slot_names
        from drivers.cards.sim import SIM_SLOTS, CardSimulator

        self.pcscd = None
        if list_readers() is None:
            self.pcscd = Pcscd(Path(tempfile.mkdtemp(prefix="ui-pcscd-"))).start()
        self.sim = CardSimulator({k: v for k, v in SIM_SLOTS.items() if self.nfc or v.kind == "pcsc"})
        self.pcsc_slots = PcscSlots(callbacks, reader_slot_names(), only_named=True, wait_ms=200).start()
        self.nfc_slot = NfcSlot("4", SIM_SLOTS["4"].reader, callbacks).start() if self.nfc else None
        self.pcsc_slots.ready.wait(5)

    def stop(self) -> None:
        for part in ("pcsc_slots", "nfc_slot", "sim"):
            obj = getattr(self, part, None)
            if obj is not None:
                _quietly(obj.stop if hasattr(obj, "stop") else obj.close)
        if getattr(self, "sim", None) is not None:
            _quietly(self.sim.close)
        if getattr(self, "pcscd", None) is not None:
            _quietly(self.pcscd.stop)
        self._stop.set()
        self._thread.join(5)
        _quietly(self.uplink.stop)
        for s in self.servers.values():
            _quietly(s.stop)
        _quietly(self.emulator.stop)
        _quietly(self.chip.close)
        _quietly(self.broker.stop)

    # -- the emulation drawer's actions (each does I/O: call them off the UI thread) ---------------
    def insert_card(self, slot: str, card: str) -> None:
        from drivers.cards.sim import card_image

        if self.sim.remove(slot)["removed"]:
            time.sleep(0.6)  # a hand swapping cards: the reader sees the slot empty before the next card
        self.sim.insert(slot, card_image(self.cards[card]))

    def remove_card(self, slot: str) -> None:
        self.sim.remove(slot)

    def set_load(self, watts: float | None) -> None:
        self.emulator.set_solar_w(0.0 if watts is not None else None)
        self.emulator.set_load_w(watts)

    def set_solar_export(self, watts: float) -> None:
        """Solar generation ``watts`` above a small house load: the meter sees reverse flow."""
        self.emulator.set_load_w(200.0)
        self.emulator.set_solar_w(200.0 + watts)

    def set_supply(self, on: bool) -> None:
        """Cut or restore the supply; a cut sends the last gasp (``power_fail``) while the radio lasts."""
        self.emulator.set_supply(on)
        self.uplink.publish_status("power_restored" if on else "power_fail")
        self.supply_on = on

    def set_broker(self, up: bool) -> None:
        if up and not self.broker_up:
            self.broker.start()
        elif not up and self.broker_up:
            self.broker.stop()
        self.broker_up = up

    def set_breaker(self, open_: bool) -> None:
        """Open or close the breaker through the core's installer request (``appliance.breaker``), as
        ``smartmeter appliance breaker open|close --override`` does; the core reports it in ``view().breaker``."""
        store = self.api.store  # this runs on the UI's worker thread, which owns the API's connection
        try:
            from appliance.breaker import request
        except ImportError:  # a core without breaker control: set the state it would report
            with store.transaction():
                store.set_meta("breaker", {"closed": not open_, "reason": "emulation drawer", "override": True})
        else:
            request(store, "open" if open_ else "close", "emulation drawer", override=True)
        self.emulator.set_supply(not open_ and self.supply_on)

    # -- cards ---------------------------------------------------------------------------------
    def _issue_cards(self) -> None:
        now = self.clock.now()
        registry = keys.generate()
        self.root_public = keys.public_raw(registry)
        foreign_registry = keys.generate()
        company_keys: dict[tuple[str, bool], tuple[Any, bytes]] = {}
        for serial, card in enumerate(EXAMPLE_CARDS, start=1):
            k = (card.code, card.foreign)
            if k not in company_keys:
                key = keys.generate()
                cert = issue_certificate(foreign_registry if card.foreign else registry, company_code=card.code,
                                         name=card.company, role=card.role, public_key=key.public_key(),
                                         not_before=now - timedelta(days=1), not_after=now + timedelta(days=365))
                company_keys[k] = (key, cert)
            key, cert = company_keys[k]
            doc = ContractDocument(
                kind=card.role, action=Action.CONTRACT, company=Company(card.code, card.company,
                                                                        f"mqtts://{card.code.lower()}.example"),
                data_types=tuple(DataType(t) for t in card.data_types.split(",")),
                switch=SwitchTime(immediate=True), serial=serial, issued_at=now - timedelta(minutes=1),
                expires_at=now + timedelta(days=30), menu=card.menu, meter_id=self.meter_id,
                send_interval=self.interval)
            raw = issue_document(doc, company_key=key, certificate=cert)
            self.cards[card.name] = raw
            (self.workdir / f"card-{card.name}.cose").write_bytes(raw)


def replace_send(c: Contract, interval: timedelta) -> Contract:
    return Contract(c.role, c.company, c.data_types, interval, c.menu)


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:
        log.debug("stopping %s failed", fn, exc_info=True)


def default_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="smartmeter-ui-"))


def now_str() -> str:
    return datetime.now().isoformat(timespec="seconds")
