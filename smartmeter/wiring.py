"""Composition root: build the meter service from its config, plugging the drivers into the core.

This is the only place that knows both the core and the drivers; ``appliance`` stays free of them.
"""
from __future__ import annotations

import argparse
import logging
import signal
import threading

from appliance.cli import add_config_arg
from appliance.clock import Clock, SystemClock
from appliance.config import MeterConfig, load_config
from appliance.errors import ConfigError
from appliance.interfaces import MeteringChip
from appliance.mqtt import MqttUplink
from appliance.service import MeterService, ServiceSettings
from appliance.store import Store

log = logging.getLogger("smartmeter")


def build_chip(cfg: MeterConfig, clock: Clock) -> MeteringChip:
    from drivers.modbus.bridge import ModbusEndpoint
    from drivers.modbus.chip import ModbusMeteringChip
    from drivers.modbus.profiles import get_profile

    try:
        profile = get_profile(cfg.chip.profile)
    except ConfigError as exc:
        raise ConfigError(f"chip.profile: {exc}") from None
    if cfg.chip.tcp:
        endpoint = ModbusEndpoint.parse_tcp(cfg.chip.tcp, timeout=cfg.chip.timeout)
    elif cfg.chip.serial:
        endpoint = ModbusEndpoint.serial(cfg.chip.serial, baud=cfg.chip.baud or profile.default_baud,
                                         timeout=cfg.chip.timeout)
    else:
        raise ConfigError("chip: set chip.serial (RS-485 adapter) or chip.tcp (Modbus TCP gateway)")
    return ModbusMeteringChip(profile, endpoint, cfg.chip.address, clock)


def build_uplink(cfg: MeterConfig, clock: Clock, **kw) -> MqttUplink:
    m = cfg.mqtt
    return MqttUplink(cfg.meter.id, m.host, m.port, clock, username=m.username, password=m.password, tls=m.tls,
                      keepalive=m.keepalive, will_delay=m.will_delay, **kw)


def build_service(cfg: MeterConfig, clock: Clock, chip: MeteringChip, uplink, breaker=None) -> MeterService:
    settings = ServiceSettings(cfg.meter.id, cfg.meter.measurement_interval, cfg.meter.retention, cfg.meter.tick)
    service = MeterService(settings, Store(cfg.meter.store), chip, uplink, clock,
                           root_public_key=load_trust_anchor(cfg), confirmation=confirmation_settings(cfg),
                           breaker=breaker)
    service.commission(cfg.contracts)
    if hasattr(uplink, "on_command"):
        uplink.on_command = service.submit_command  # confirm / contract_change commands (signed)
    return service


# -- trust, confirmation, breaker and card slots (issue 3) ----------------------------------------

def load_trust_anchor(cfg: MeterConfig):
    """The registry's public key from ``trust.registry_public_key``, or None (no signed input accepted)."""
    if cfg.trust.registry_public_key is None:
        return None
    from appliance.trust import load_public

    try:
        return load_public(cfg.trust.registry_public_key)
    except ConfigError as exc:
        raise ConfigError(f"trust.registry_public_key: {exc}") from None


def confirmation_settings(cfg: MeterConfig):
    from appliance.confirmation import ConfirmationSettings

    c = cfg.confirmation
    return ConfirmationSettings(enabled=c.enabled, period=c.period, timeout=c.timeout, retry_max=c.retry_max,
                                recheck_after=c.recheck_after, new_building=c.new_building)


def build_breaker(cfg: MeterConfig):
    """The relay driver from ``[breaker]``, or None when no pin is configured (no breaker fitted)."""
    b = cfg.breaker
    if b.pin is None:
        return None
    from drivers.breaker.relay import RelayBreaker, make_pin_factory

    try:
        return RelayBreaker(b.pin, b.journal, feedback_pin=b.feedback_pin, active_high=b.active_high,
                            normally_closed=b.normally_closed, feedback_active_high=b.feedback_active_high,
                            default_closed=not cfg.confirmation.new_building,
                            pin_factory=make_pin_factory(b.pin_factory))
    except Exception as exc:  # gpiozero: no such pin, no pin library, pin busy
        raise ConfigError(f"breaker.pin: cannot drive GPIO {b.pin}: {exc}") from None


def start_card_slots(cfg: MeterConfig, clock: Clock, root_public_key) -> list:
    """Start the card slots of ``[cards]``; each reports into the core through its own store connection.

    Returns the started slot objects (each has ``stop()``)."""
    if not cfg.cards.slots:
        return []
    if root_public_key is None:
        raise ConfigError("cards.slots: contract cards need trust.registry_public_key to verify them")
    from appliance.api import MeterAPI
    from appliance.documents import DocumentIntake
    from drivers.cards.events import CardCallbacks

    intake = DocumentIntake(MeterAPI(Store(cfg.meter.store), cfg.meter.id, cfg.meter.measurement_interval, clock),
                            root_public_key)
    callbacks = CardCallbacks(on_document=intake.on_card_document, on_error=intake.on_card_error,
                              on_inserted=lambda slot: log.info("card slot %s: card inserted", slot),
                              on_removed=lambda slot: log.info("card slot %s: card removed", slot))
    started: list = []
    pcsc = {s.pcsc: s.slot for s in cfg.cards.slots if s.pcsc}
    if pcsc:
        from drivers.cards.pcsc import PcscSlots

        started.append(PcscSlots(callbacks, pcsc, only_named=True).start())
    for s in cfg.cards.slots:
        if s.nfc:
            from drivers.cards.nfc import NfcSlot

            started.append(NfcSlot(s.slot, s.nfc, callbacks).start())
    log.info("card slots: %s", ", ".join(f"{s.slot}={s.pcsc or s.nfc}" for s in cfg.cards.slots))
    return started


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    clock = SystemClock()
    try:
        chip = build_chip(cfg, clock)
    except ConfigError as exc:
        raise ConfigError(f"{cfg.path}: {exc}") from None
    uplink = build_uplink(cfg, clock)
    breaker = build_breaker(cfg)
    service = build_service(cfg, clock, chip, uplink, breaker)
    slots = start_card_slots(cfg, clock, service.confirmer.root if service.documents else None)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("meter %s: measuring every %s from %s; broker %s:%s", cfg.meter.id, cfg.meter.measurement_interval,
             getattr(chip, "describe", lambda: "the chip")(), cfg.mqtt.host, cfg.mqtt.port)
    uplink.start()
    try:
        service.run(stop)
    finally:
        for slot in slots:
            slot.stop()
        uplink.stop()
        chip.close()
        if breaker is not None:
            breaker.shutdown()
        service.store.close()
    return 0


def register(groups) -> None:
    p = groups["appliance"].add_parser(
        "run", help="run the meter service (measure, switch, send) until stopped",
        description="Run the headless meter service: the Fig. 8 loop. Stops cleanly on SIGTERM/Ctrl-C; "
                    "a kill at any moment loses nothing (readings queue in the store).")
    add_config_arg(p)
    p.set_defaults(func=cmd_run)
    from appliance.breaker import register_cli

    register_cli(groups)  # smartmeter appliance breaker open|close|release|status
