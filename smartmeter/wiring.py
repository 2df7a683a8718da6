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


def build_service(cfg: MeterConfig, clock: Clock, chip: MeteringChip, uplink) -> MeterService:
    settings = ServiceSettings(cfg.meter.id, cfg.meter.measurement_interval, cfg.meter.retention, cfg.meter.tick)
    service = MeterService(settings, Store(cfg.meter.store), chip, uplink, clock)
    service.commission(cfg.contracts)
    return service


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    clock = SystemClock()
    chip = build_chip(cfg, clock)
    uplink = build_uplink(cfg, clock)
    service = build_service(cfg, clock, chip, uplink)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("meter %s: measuring every %s from %s; broker %s:%s", cfg.meter.id, cfg.meter.measurement_interval,
             getattr(chip, "describe", lambda: "the chip")(), cfg.mqtt.host, cfg.mqtt.port)
    uplink.start()
    try:
        service.run(stop)
    finally:
        uplink.stop()
        chip.close()
        service.store.close()
    return 0


def register(groups) -> None:
    p = groups["appliance"].add_parser(
        "run", help="run the meter service (measure, switch, send) until stopped",
        description="Run the headless meter service: the Fig. 8 loop. Stops cleanly on SIGTERM/Ctrl-C; "
                    "a kill at any moment loses nothing (readings queue in the store).")
    add_config_arg(p)
    p.set_defaults(func=cmd_run)
