"""``smartmeter appliance run``: the headless meter service, assembled by :mod:`smartmeter.assembly`."""
from __future__ import annotations

import argparse
import logging
import signal
import threading

from appliance.cli import add_config_arg
from appliance.clock import SystemClock
from appliance.config import load_config

from .assembly import build_meter
from .systemd import Notifier, log_to_journal

log = logging.getLogger("smartmeter")


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    log_to_journal("smartmeter-meter", meter_id=cfg.meter.id)  # under systemd: entries with fields
    if args.metrics:
        import msgspec

        from appliance.config import parse_listen

        try:
            parse_listen(args.metrics)
        except ValueError as exc:
            raise SystemExit(f"--metrics: {exc}") from None
        cfg = msgspec.structs.replace(cfg, metrics=msgspec.structs.replace(cfg.metrics, listen=args.metrics))
    meter = build_meter(cfg, SystemClock())
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("meter %s: measuring every %s from %s; broker %s:%s", cfg.meter.id, cfg.meter.measurement_interval,
             getattr(meter.chip, "describe", lambda: "the chip")(), cfg.mqtt.host, cfg.mqtt.port)
    systemd = Notifier()
    meter.start()
    systemd.ready(f"meter {cfg.meter.id}: measuring every {cfg.meter.measurement_interval}")
    try:
        meter.run(stop, systemd.heartbeat)
    finally:
        systemd.stopping()
        meter.close()
    return 0


def register(groups) -> None:
    p = groups["appliance"].add_parser(
        "run", help="run the meter service (measure, switch, send) until stopped",
        description="Run the headless meter service: the Fig. 8 loop. Stops cleanly on SIGTERM/Ctrl-C; "
                    "a kill at any moment loses nothing (readings queue in the store).")
    add_config_arg(p)
    p.add_argument("--metrics", metavar="HOST:PORT",
                   help="serve Prometheus metrics here (e.g. 127.0.0.1:9108; overrides [metrics] listen)")
    p.set_defaults(func=cmd_run)
    from appliance.breaker import register_cli

    register_cli(groups)  # smartmeter appliance breaker open|close|release|status
