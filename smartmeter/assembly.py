"""The composition root: the one place a meter is assembled from its validated config.

Every way of running a meter goes through :func:`build_meter`: the headless service
(``smartmeter appliance run``), the desktop emulation (:mod:`smartmeter.emulation` makes a config:
mock pin factory, the chip emulator on Modbus TCP), the benchmarks and the tests' rig. A caller may
hand in a hardware part it already holds (a chip with its own retry policy, a relay on a test's own
mock pin factory); every other part is built from the config here. The touch screen's process
gets the core's API and card check from :func:`meter_api` and :func:`card_check`.

This is the only module that knows both the core (``appliance``) and the drivers.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from appliance.api import MeterAPI
from appliance.clock import Clock
from appliance.config import MeterConfig
from appliance.confirmation import ConfirmationSettings
from appliance.documents import CardCheck, DocumentIntake
from appliance.errors import ConfigError
from appliance.interfaces import Breaker, MeteringChip
from appliance.mqtt import MqttUplink
from appliance.service import MeterService, ServiceSettings
from appliance.store import Store
from appliance.supply import GPIO, SupplySettings, SupplyWatch
from appliance.uplink import Uplink

log = logging.getLogger("smartmeter")


@dataclass
class Meter:
    """An assembled meter: the service and the parts it runs on. :meth:`start` connects the uplink
    and opens the card slots; :meth:`close` releases everything in the reverse order."""

    config: MeterConfig
    clock: Clock
    store: Store
    chip: MeteringChip
    uplink: Uplink
    breaker: Breaker | None
    service: MeterService
    api: MeterAPI
    card_slots: list[Any] = field(default_factory=list)
    supply_monitor: Any = None  # the "power good" input (drivers.supply), if one is configured
    home_assistant: Any = None  # appliance.home_assistant.HomeAssistantBridge, if enabled
    metrics_server: Any = None  # the Prometheus endpoint, while served

    def start(self) -> "Meter":
        self.uplink.start()
        if self.supply_monitor is not None:
            self.supply_monitor.start(lambda good: self.service.supply.report(GPIO, good))
        if self.home_assistant is not None:
            self.home_assistant.start()
        if self.config.metrics.listen:
            from appliance.metrics import MeterMetrics, serve

            self.metrics_server = serve(self.config.metrics.listen, MeterMetrics(self.service, self.clock))
            log.info("metrics on http://%s/metrics", self.config.metrics.listen)
        self.card_slots = start_card_slots(self.config, self.clock)
        return self

    def run(self, stop: threading.Event, heartbeat=None) -> None:
        self.service.run(stop, heartbeat)

    def close(self) -> None:
        for slot in self.card_slots:
            slot.stop()
        self.card_slots = []
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server = None
        if self.home_assistant is not None:
            self.home_assistant.stop()
        if self.supply_monitor is not None:
            self.supply_monitor.close()
        self.uplink.stop()
        self.chip.close()
        if self.breaker is not None:
            self.breaker.shutdown()
        self.store.close()


def build_meter(cfg: MeterConfig, clock: Clock, *, chip: MeteringChip | None = None, uplink: Uplink | None = None,
                breaker: Breaker | None = None, commission: bool = True) -> Meter:
    """The meter of ``cfg`` on ``clock``. Parts not handed in are built from the config."""
    chip = chip if chip is not None else build_chip(cfg, clock)
    uplink = uplink if uplink is not None else build_uplink(cfg, clock)
    breaker = breaker if breaker is not None else build_breaker(cfg, clock)
    monitor = build_supply_monitor(cfg)
    store = Store(cfg.meter.store)
    settings = ServiceSettings(cfg.meter.id, cfg.meter.measurement_interval, cfg.meter.retention, cfg.meter.tick)
    service = MeterService(settings, store, chip, uplink, clock, root_public_key=trust_anchor(cfg),
                           confirmation=confirmation_settings(cfg), breaker=breaker,
                           supply=supply_watch(cfg, store, uplink, clock))
    uplink.on_command = service.submit_command  # confirm / contract_change commands (signed)
    if commission:
        service.commission(cfg.contracts)
    return Meter(cfg, clock, store, chip, uplink, breaker, service, meter_api(cfg, clock, store),
                 supply_monitor=monitor, home_assistant=home_assistant(cfg, service))


def build_chip(cfg: MeterConfig, clock: Clock, *, retries: int = 3) -> MeteringChip:
    from drivers.modbus.bridge import ModbusEndpoint
    from drivers.modbus.chip import ModbusMeteringChip
    from drivers.modbus.profiles import get_profile

    try:
        profile = get_profile(cfg.chip.profile)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.path}: chip.profile: {exc}") from None
    if cfg.chip.tcp:
        endpoint = ModbusEndpoint.parse_tcp(cfg.chip.tcp, timeout=cfg.chip.timeout)
    elif cfg.chip.serial:
        endpoint = ModbusEndpoint.serial(cfg.chip.serial, baud=cfg.chip.baud or profile.default_baud,
                                         timeout=cfg.chip.timeout)
    else:
        raise ConfigError(f"{cfg.path}: chip: set chip.serial (RS-485 adapter) or chip.tcp (Modbus TCP gateway)")
    return ModbusMeteringChip(profile, endpoint, cfg.chip.address, clock, retries=retries)


def build_uplink(cfg: MeterConfig, clock: Clock) -> MqttUplink:
    m = cfg.mqtt
    return MqttUplink(cfg.meter.id, m.host, m.port, clock, settings=m, keepalive=m.keepalive,
                      will_delay=m.will_delay)


def build_breaker(cfg: MeterConfig, clock: Clock) -> Breaker | None:
    """The relay driver from ``[breaker]``, or None when no pin is configured (no breaker fitted)."""
    b = cfg.breaker
    if b.pin is None:
        return None
    from drivers.breaker.relay import RelayBreaker, make_pin_factory

    try:
        return RelayBreaker(b.pin, b.journal, feedback_pin=b.feedback_pin, active_high=b.active_high,
                            normally_closed=b.normally_closed, feedback_active_high=b.feedback_active_high,
                            default_closed=not cfg.confirmation.new_building,
                            pin_factory=make_pin_factory(b.pin_factory), clock=clock)
    except Exception as exc:  # gpiozero: no such pin, no pin library, pin busy
        raise ConfigError(f"breaker.pin: cannot drive GPIO {b.pin}: {exc}") from None


def supply_watch(cfg: MeterConfig, store: Store, uplink: Uplink, clock: Clock) -> SupplyWatch | None:
    """The last gasp's watch when ``[supply]`` names a signal; it publishes on the uplink's status topic."""
    s = cfg.supply
    if not s.enabled:
        return None
    if not hasattr(uplink, "publish_status"):
        raise ConfigError("supply: the last gasp needs the MQTT uplink (it publishes on the status topic)")
    settings = SupplySettings(s.voltage_threshold, s.voltage_poll, timedelta(milliseconds=s.holdup_ms))
    return SupplyWatch(settings, store, uplink, clock)


def home_assistant(cfg: MeterConfig, service: MeterService):
    """The Home Assistant bridge of ``[home_assistant]`` (the household's broker), fed each reading; or None."""
    if not cfg.home_assistant.enabled:
        return None
    from appliance.home_assistant import HomeAssistantBridge

    bridge = HomeAssistantBridge(cfg.home_assistant, cfg.meter.id, service.store.breaker_state)
    service.reading_listeners.append(bridge.on_reading)
    return bridge


def build_supply_monitor(cfg: MeterConfig):
    """The "power good" input of ``[supply]``, or None when no pin is configured."""
    s = cfg.supply
    if s.pin is None:
        return None
    from drivers.breaker.relay import make_pin_factory
    from drivers.supply import GpioSupplyMonitor

    try:
        return GpioSupplyMonitor(s.pin, active_high=s.active_high, pull_up=s.pull_up,
                                 pin_factory=make_pin_factory(s.pin_factory))
    except Exception as exc:  # gpiozero: no such pin, no pin library, pin busy
        raise ConfigError(f"supply.pin: cannot read GPIO {s.pin}: {exc}") from None


def trust_anchor(cfg: MeterConfig):
    """The registry's public key from ``trust.registry_public_key``, or None (no signed input accepted)."""
    if cfg.trust.registry_public_key is None:
        return None
    from appliance.trust import load_public

    try:
        return load_public(cfg.trust.registry_public_key)
    except ConfigError as exc:
        raise ConfigError(f"trust.registry_public_key: {exc}") from None


def confirmation_settings(cfg: MeterConfig) -> ConfirmationSettings:
    c = cfg.confirmation
    return ConfirmationSettings(enabled=c.enabled, period=c.period, timeout=c.timeout, retry_max=c.retry_max,
                                recheck_after=c.recheck_after, new_building=c.new_building)


def meter_api(cfg: MeterConfig, clock: Clock, store: Store | None = None) -> MeterAPI:
    """The core's API over the meter's store (its own connection unless one is given)."""
    return MeterAPI(store or Store(cfg.meter.store), cfg.meter.id, cfg.meter.measurement_interval, clock)


def card_check(cfg: MeterConfig, clock: Clock, store: Store, root=None) -> CardCheck:
    """The core's check of this meter's contract cards, against ``root`` or the config's trust anchor."""
    root = root if root is not None else trust_anchor(cfg)
    if root is None:
        raise ConfigError(f"{cfg.path}: cards: contract cards need trust.registry_public_key to verify them")
    return CardCheck(root, cfg.meter.id, clock, store)


def start_card_slots(cfg: MeterConfig, clock: Clock) -> list[Any]:
    """Start the card slots of ``[cards]``; they report into the core through their own store connection.

    Returns the started slot objects (each has ``stop()``)."""
    if not cfg.cards.slots and cfg.cards.usb_mount is None:
        return []
    api = meter_api(cfg, clock)
    intake = DocumentIntake(api, card_check(cfg, clock, api.store).root)
    from appliance.card_events import CardCallbacks

    callbacks = CardCallbacks(on_document=intake.on_card_document, on_error=intake.on_card_error,
                              on_inserted=lambda slot: log.info("card slot %s: card inserted", slot),
                              on_removed=lambda slot: log.info("card slot %s: card removed", slot))
    started: list[Any] = []
    pcsc = {s.pcsc: s.slot for s in cfg.cards.slots if s.pcsc}
    if pcsc:
        from drivers.cards.pcsc import PcscSlots

        started.append(PcscSlots(callbacks, pcsc, only_named=True).start())
    for s in cfg.cards.slots:
        if s.nfc:
            from drivers.cards.nfc import NfcSlot

            started.append(NfcSlot(s.slot, s.nfc, callbacks).start())
    if cfg.cards.usb_mount is not None:
        from drivers.cards.usb import UsbMedium

        medium = CardCallbacks(on_document=intake.on_medium_document, on_error=intake.on_medium_error)
        started.append(UsbMedium("usb", cfg.cards.usb_mount, medium, cfg.cards.usb_taken,
                                 poll=cfg.cards.usb_poll.total_seconds()).start())
    log.info("card slots: %s", ", ".join([f"{s.slot}={s.pcsc or s.nfc}" for s in cfg.cards.slots]
                                         + ([f"usb={cfg.cards.usb_mount}"] if cfg.cards.usb_mount else [])))
    return started
