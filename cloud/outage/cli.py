"""Commands of the outage pipeline:

  smartmeter cloud collector | manager | notifier | registrations import | outages | dead-letters
  smartmeter sim fleet
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import signal
import threading
import time
from datetime import time as dtime
from datetime import timedelta
from pathlib import Path

from ..accounts import DEFAULT_FILE as ACCOUNTS_FILE
from ..broker_options import add_broker_options, broker_from_args

log = logging.getLogger(__name__)

DB_HELP = "storage URL: sqlite:///PATH (default sqlite:///outage.db, or $SMARTMETER_OUTAGE_DB) or postgresql://user@host/db"


def duration(text: str) -> timedelta:
    """'30m', '2s', '1h', '90' (seconds)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 90s or 1h")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return timedelta(seconds=float(m.group(1)) * unit)


def host_port(text: str, default_port: int) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "")
    return host or "127.0.0.1", int(port or default_port)


def quiet_hours(text: str) -> tuple[dtime | None, dtime | None]:
    if text in ("", "none", "off"):
        return None, None
    a, b = text.split("-")
    return dtime.fromisoformat(a), dtime.fromisoformat(b)


def _timing_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", type=duration, default=timedelta(minutes=30), help="measurement interval (default 30m)")
    p.add_argument("--grace", type=duration, default=timedelta(minutes=2), help="how late a reading may be (default 2m)")


def _common(p: argparse.ArgumentParser, mqtt: bool = True) -> None:
    p.add_argument("--db", default=None, help=DB_HELP)
    if mqtt:
        add_broker_options(p)


OPERATORS_FILE = ACCOUNTS_FILE
REGION_MAP = Path("/etc/smartmeter/outage-regions.toml")  # cloud.outage.regions describes it
SECRET_FILE = Path("/var/lib/smartmeter/outage-secret.key")


def _link_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--public-url", default="http://127.0.0.1:8080", help="base URL of unsubscribe links")
    p.add_argument("--secret-file", type=Path, default=SECRET_FILE,
                   help=f"the key that signs unsubscribe links, shared by the manager and the notifiers; made "
                        f"(random, mode 0600) at first start if missing (default {SECRET_FILE})")


def _until_signal() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# ----------------------------------------------------------------- cloud
def _metrics_arg(p) -> None:
    p.add_argument("--metrics", metavar="HOST:PORT",
                   help="serve Prometheus metrics here, e.g. 127.0.0.1:9109 (default: not served; no login)")


def cmd_collector(args) -> int:
    from appliance.clock import SystemClock

    from .collector import Collector, IntakeConfig, Timing
    from .storage import Retention, open_storage

    storage = open_storage(args.db, Retention(keep_days=args.keep_readings_days))
    c = Collector(storage, SystemClock(), Timing(args.period, args.grace), intake=IntakeConfig(skew=args.clock_skew))
    broker = broker_from_args(args)
    c.start(broker, share_group=args.share_group, persistent=args.persistent or bool(args.client_id),
            client_id=args.client_id)
    log.info("collector on %s:%d%s", broker.host, broker.port, f" in $share group {args.share_group}" if args.share_group else "")
    from .metrics import CollectorMetrics, serve

    metrics = serve(args.metrics, CollectorMetrics(c))
    stop = _until_signal()
    while not stop.wait(1.0):
        if not c.healthy:  # exit non-zero, so systemd restarts it
            log.critical("collector cannot go on: %s", c.failure or "its MQTT thread ended")
            return 1
        closed = c.poll_window()
        if closed is not None:
            log.info("window ending %s: %d meters without communication (Table 2)", closed.window_end, closed.silent)
    c.stop()
    if metrics:
        metrics.shutdown()
    s = c.stats
    print(f"messages {s.messages}, stored {s.stored}, duplicates {s.duplicates}, refused {s.malformed_total} "
          f"{dict(s.malformed)}, dead letters {s.dead_letters}")
    return 0


def cmd_manager(args) -> int:
    from appliance.clock import SystemClock

    from .api import OutageApi
    from .collector import Timing
    from .da_feed import DaFeed
    from .mail import Sender
    from .manager import ManagerConfig, OutageManager
    from .storage import open_storage

    from ..accounts import Accounts
    from ..secrets import load_or_create_key

    from .regions import RegionMapError, region_named

    config = ManagerConfig(timing=Timing(args.period, args.grace), declaration_delay=args.declaration_delay)
    try:
        region = region_named(args.region_map, args.region) if args.region else None
    except RegionMapError as exc:
        raise SystemExit(str(exc)) from None
    manager = OutageManager(open_storage(args.db), SystemClock(), config, region=region)
    sender = Sender(load_or_create_key(args.secret_file), public_url=args.public_url)
    if not args.accounts.exists():
        log.warning("no operators' accounts in %s: every request but an unsubscribe link is refused "
                    "(add one: smartmeter cloud operator add NAME --role operator --accounts %s)", args.accounts, args.accounts)
    api_host, api_port = host_port(args.api_listen, 8080)
    api = OutageApi(manager, sender, Accounts(args.accounts), host=api_host, port=api_port).start()
    feed = None
    if args.da_feed:
        feed = DaFeed(manager)
        feed.start(broker_from_args(args))
    log.info("manager of %s: API on %s, tick every %ss",
             f"region {region.name} ({', '.join(region.prefectures)})" if region else "the whole territory",
             api.url, args.tick.total_seconds())
    from .metrics import ManagerMetrics, serve

    counts = ManagerMetrics()
    metrics = serve(args.metrics, counts)
    stop = _until_signal()
    while not stop.wait(args.tick.total_seconds()):
        try:
            for o in manager.tick():
                log.debug("outage %s %s %s %s: %d homes", o.id, o.kind.value, o.status.value, o.area.key, o.current_count)
            if metrics:
                counts.note_open(manager.open_outages())
        except Exception:
            log.exception("tick failed")
    if metrics:
        metrics.shutdown()
    api.stop()
    if feed:
        feed.stop()
    return 0


def cmd_notifier(args) -> int:
    from appliance.clock import SystemClock

    from ..secrets import load_or_create_key
    from .mail import Sender
    from .notifier import Notifier, NotifierConfig
    from .storage import open_storage

    host, port = host_port(args.smtp, 25)
    start, end = quiet_hours(args.quiet_hours)
    config = NotifierConfig(smtp_host=host, smtp_port=port, quiet_start=start, quiet_end=end,
                            sender=Sender(load_or_create_key(args.secret_file), address=args.sender,
                                          public_url=args.public_url))
    n = Notifier(open_storage(args.db), SystemClock(), config)
    log.info("notifier %s sending through %s:%d", n.worker, host, port)
    from .metrics import NotifierMetrics, serve

    metrics = serve(args.metrics, NotifierMetrics(n))
    n.run(_until_signal(), poll_s=args.poll.total_seconds())
    if metrics:
        metrics.shutdown()
    print(f"sent {n.stats.sent}, retried {n.stats.retried}, failed {n.stats.failed}, skipped {n.stats.skipped}")
    return 0


CSV_HEADER = ("meter_id", "customer_number", "prefecture", "city", "district", "concentrator_id", "email", "name",
              "language", "commissioned_at", "substation", "feeder", "section")
CSV_REQUIRED = CSV_HEADER[:6]  # the rest may be left out


def _commissioned(reg, value: str | None, where: str):
    """``reg`` with its meter's commissioning time (ISO-8601 with a UTC offset), if one is given."""
    from dataclasses import replace
    from datetime import datetime

    if not value:
        return reg
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise SystemExit(f"{where}: commissioned_at {value[:40]!r} is not an ISO-8601 time with a UTC offset")
    return replace(reg, commissioned_at=at)


def read_registrations(path: Path):
    """CSV (header :data:`CSV_HEADER`) or JSON (a list of objects with ``area`` as prefecture/city/district)."""
    from .api import registration_from_json

    if path.suffix.lower() == ".json":
        return [_commissioned(registration_from_json(o), o.get("commissioned_at"), f"{path}: item {i + 1}")
                for i, o in enumerate(json.loads(path.read_text(encoding="utf-8")))]
    out = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_REQUIRED if c not in (reader.fieldnames or ())]
        if missing:
            raise SystemExit(f"{path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
                             f"expected header: {','.join(CSV_HEADER)}")
        for row in reader:
            row["area"] = "/".join((row.pop("prefecture"), row.pop("city"), row.pop("district")))
            out.append(_commissioned(registration_from_json(row), row.get("commissioned_at"), f"{path}:{reader.line_num}"))
    return out


def cmd_registrations_import(args) -> int:
    from .storage import open_storage
    from .topology import FleetSpec, registrations

    storage = open_storage(args.db)
    if args.fleet:
        regs = registrations(FleetSpec(args.fleet, args.area_size, args.concentrators))
    elif args.file:
        regs = read_registrations(Path(args.file))
    else:
        raise SystemExit("give a FILE or --fleet N")
    n = storage.upsert_registrations(regs)
    print(f"{n} registrations imported into {storage.url}")
    return 0


def cmd_outages(args) -> int:
    from appliance.clock import SystemClock

    from .manager import OutageManager
    from .model import Language
    from .storage import open_storage
    from .texts import REASON, RESPONSE_STATUS, label, when

    lang = Language(args.lang)
    storage = open_storage(args.db)
    m = OutageManager(storage, SystemClock())
    heads = ("番号", "種別", "状態", "停電地域", "停電戸数", "停電日時", "復旧予定", "対応状況", "停電理由") if lang is Language.JA else \
        ("id", "kind", "status", "area", "homes", "since", "expected", "response", "reason")
    print("\t".join(heads))
    for o in storage.outages(open_only=not args.all):
        print("\t".join(map(str, (o.id, o.kind.value, o.status.value, o.area.label(), f"{o.current_count}/{o.peak_count}",
                                  when(o.started_at, lang), when(o.expected_restoration, lang),
                                  label(RESPONSE_STATUS, o.response_status, lang), label(REASON, o.reason, lang)))))
    for c in m.area_counts():
        print(f"{c.area.label()}: {c.current} ({'最大' if lang is Language.JA else 'peak'} {c.peak})")
    return 0


def cmd_dead_letters(args) -> int:
    from appliance.clock import iso

    from .storage import open_storage

    storage = open_storage(args.db)
    print(f"{storage.dead_letter_count()} dead letters; the newest {args.limit}:")
    print("received_at\ttopic\treason\texcerpt")
    for d in storage.dead_letters(args.limit):
        print("\t".join((iso(d.received_at), d.topic, d.reason, d.excerpt)))
    return 0


# ----------------------------------------------------------------- sim
def _api_authorization(args) -> str | None:
    """An operator's credentials for the manager's API: the name, and the password from a 0600 file."""
    from appliance.config import read_secret

    from .api_auth import basic_header

    if not args.api_user:
        return None
    if not args.api_password_file:
        raise SystemExit("--api-user needs --api-password-file (a password is never given on the command line)")
    return basic_header(args.api_user, read_secret(Path(args.api_password_file), "--api-password-file").strip())


def _publisher_accounts(args):
    """One connection per ``--mqtt-config`` (an account is one session); without accounts, ``--connections``."""
    from appliance.config import load_mqtt_config

    if args.mqtt_config:
        return [load_mqtt_config(f) for f in args.mqtt_config]
    ns = argparse.Namespace(mqtt_config=None, mqtt=args.mqtt)
    return [broker_from_args(ns)] * max(1, args.connections)


def cmd_fleet(args) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from appliance.clock import ManualClock, SystemClock

    from .fleet import Fleet, Publisher
    from .scenarios import ScenarioOptions, build, run
    from .topology import FleetSpec

    spec = FleetSpec(args.meters, args.area_size, args.concentrators)
    clock = SystemClock() if args.clock == "real" else ManualClock(SystemClock().now())
    pub = Publisher(*_publisher_accounts(args), qos=args.qos)
    fleet = Fleet(spec, clock, pub, period=args.period, silent_rate=args.silent_rate, batch=args.batch, seed=args.seed)
    steps = build(args.scenario, fleet, args.period,
                  ScenarioOptions(da_feed=args.da_feed, api_url=args.api, api_authorization=_api_authorization(args)),
                  seed=args.seed)
    t0 = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()) as bar:
        task = bar.add_task(f"{spec.meters:,} meters × {args.windows} windows", total=spec.meters * args.windows)
        run(fleet, steps, args.windows, args.spread.total_seconds(), progress=lambda n: bar.advance(task, n))
    pub.close()
    t = fleet.totals
    elapsed = time.monotonic() - t0
    print(f"fleet: {spec.meters:,} meters in {spec.areas:,} areas, {spec.concentrators_per_area} concentrators each")
    print(f"windows {t.windows}, readings sent {t.readings:,} in {t.messages:,} MQTT messages"
          f"{' (batched by concentrator)' if args.batch else ''}, randomly silent {t.random_silent:,}")
    print(f"last gasps {t.gasps:,}, restorations {t.restorations:,}; {elapsed:.1f} s, {t.readings / max(elapsed, 1e-9):,.0f} readings/s")
    for line in t.events:
        print(f"  {line}")
    return 0


def register(groups) -> None:
    from appliance.wire import CLOCK_SKEW

    from .scenarios import SCENARIOS
    from .storage.partitions import Retention

    cloud, sim = groups["cloud"], groups["sim"]

    p = cloud.add_parser("collector", help="outage pipeline: store meters' readings and track silence (device 17)",
                         description="Subscribe to meters/+/interval, concentrators/+/batch and meters/+/status; "
                                     "store readings deduplicated; log the no-communication list each window.")
    _common(p)
    _timing_args(p)
    p.add_argument("--share-group", help="join this $share group so several collectors split the load")
    p.add_argument("--persistent", action="store_true",
                   help="a persistent MQTT session (the account's): nothing is lost across restarts")
    p.add_argument("--client-id", help="persistent session under this client id (a broker without accounts only)")
    p.add_argument("--clock-skew", type=duration, default=CLOCK_SKEW,
                   help="refuse readings and statuses stamped more than this ahead of this host's clock (default 5m)")
    p.add_argument("--keep-readings-days", type=int, default=Retention.keep_days, metavar="DAYS",
                   help="PostgreSQL: drop day partitions of readings older than this (default 7; settlement "
                        "readings are the MDMS's to keep)")
    _metrics_arg(p)
    p.set_defaults(func=cmd_collector)

    p = cloud.add_parser("manager", help="outage pipeline: judge outages, serve the operators' API (device 25)",
                         description="Judge outages every --tick, run the HTTP JSON API for distribution automation, "
                                     "operators and planned outages, and optionally follow the simulated DA feed.")
    _common(p)
    _timing_args(p)
    p.add_argument("--tick", type=duration, default=timedelta(seconds=2), help="how often to judge (default 2s)")
    p.add_argument("--declaration-delay", type=duration, default=timedelta(seconds=30),
                   help="blinks shorter than this never become outages (default 30s)")
    p.add_argument("--api-listen", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="where the HTTP API listens (default 127.0.0.1:8080: this host only)")
    p.add_argument("--accounts", type=Path, default=OPERATORS_FILE,
                   help=f"the operators' accounts (smartmeter cloud operator add; default {OPERATORS_FILE})")
    _link_args(p)
    p.add_argument("--da-feed", action="store_true", help="also take DA events from MQTT grid/da/events")
    p.add_argument("--region", metavar="NAME",
                   help="judge only this region of --region-map: its prefectures' meters, outages, DA events and "
                        "operator input; managers of other regions run beside it (default: the whole territory)")
    p.add_argument("--region-map", type=Path, default=REGION_MAP, metavar="FILE",
                   help=f"TOML: [regions] NAME = [\"広島県\", ...], each prefecture in one region (default {REGION_MAP})")
    _metrics_arg(p)
    p.set_defaults(func=cmd_manager)

    p = cloud.add_parser("notifier", help="outage pipeline: send the customers' e-mails over SMTP (server 27)",
                         description="Claim due e-mails from the outbox and send them; run several for more throughput.")
    _common(p, mqtt=False)
    p.add_argument("--smtp", default="127.0.0.1:25", help="SMTP server host:port (default 127.0.0.1:25)")
    p.add_argument("--sender", default="teiden@example.jp", help="From address")
    p.add_argument("--quiet-hours", default="22:00-07:00", help="JST hours that hold back non-urgent e-mail, or 'none'")
    p.add_argument("--poll", type=duration, default=timedelta(seconds=1), help="how often to look for work (default 1s)")
    _link_args(p)
    _metrics_arg(p)
    p.set_defaults(func=cmd_notifier)

    p = cloud.add_parser("registrations", help="outage pipeline: customers' registrations (Table 1)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser("import", help="import registrations from CSV/JSON, or generate a simulated fleet's",
                         description=f"CSV header: {','.join(CSV_HEADER)} (email, name, language and "
                                     "commissioned_at, ISO-8601 with a UTC offset, may be left out). "
                                     "JSON: a list of objects with area 'prefecture/city/district'.")
    imp.add_argument("file", nargs="?", help="CSV or JSON file")
    imp.add_argument("--fleet", type=int, help="generate the registrations of `smartmeter sim fleet --meters N`")
    imp.add_argument("--area-size", type=int, default=40, help="customers per area (with --fleet)")
    imp.add_argument("--concentrators", type=int, default=2, help="concentrators per area (with --fleet)")
    _common(imp, mqtt=False)
    imp.set_defaults(func=cmd_registrations_import)

    p = cloud.add_parser("outages", help="outage pipeline: list outages and per-area counts (Tables 3-4)")
    _common(p, mqtt=False)
    p.add_argument("--all", action="store_true", help="include closed outages")
    p.add_argument("--lang", choices=("ja", "en"), default="ja")
    p.set_defaults(func=cmd_outages)

    p = cloud.add_parser("dead-letters", help="outage pipeline: list the messages the collector refused, newest first",
                         description="Each refused or unstorable message: when, its topic, the reason and a bounded, "
                                     "printable excerpt. Kept 30 days, at most 100,000 rows.")
    _common(p, mqtt=False)
    p.add_argument("--limit", type=int, default=50, help="how many to list (default 50)")
    p.set_defaults(func=cmd_dead_letters)

    p = sim.add_parser("fleet", help="drive N simulated meters over MQTT through an outage scenario",
                       description="Meters in areas under concentrators send interval readings with jitter; "
                                   "about 1% miss any read. Scenarios: " + ", ".join(SCENARIOS) + ".")
    p.add_argument("--meters", type=int, default=1000, help="fleet size, 1 .. 1,000,000 (default 1000)")
    p.add_argument("--area-size", type=int, default=40, help="customers per area (default 40)")
    p.add_argument("--concentrators", type=int, default=2, help="concentrators per area (default 2)")
    p.add_argument("--scenario", choices=SCENARIOS, default="none")
    p.add_argument("--windows", type=int, default=4, help="windows to send (default 4)")
    p.add_argument("--period", type=duration, default=timedelta(minutes=30), help="window length (default 30m)")
    p.add_argument("--spread", type=duration, default=timedelta(seconds=10), help="jitter: spread each window's sends over this")
    p.add_argument("--silent-rate", type=float, default=0.01, help="share of meters missing any one read (default 0.01)")
    p.add_argument("--batch", action="store_true", help="send through concentrators/{id}/batch")
    p.add_argument("--connections", type=int, default=2,
                   help="anonymous MQTT connections to publish on (with accounts: one per --mqtt-config)")
    p.add_argument("--qos", type=int, choices=(0, 1), default=1)
    p.add_argument("--clock", choices=("real", "simulated"), default="real",
                   help="real: windows at wall-clock times; simulated: as fast as possible (throughput only)")
    p.add_argument("--da-feed", action="store_true", help="publish distribution automation events on grid/da/events")
    p.add_argument("--api", help="manager API URL, to announce the planned scenario's outage")
    p.add_argument("--api-user", help="an operator's user name for --api")
    p.add_argument("--api-password-file", help="a file (mode 0600) holding that operator's password")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mqtt-config", metavar="FILE", action="append",
                   help="a simulator account's [mqtt] settings; repeat with more accounts for more connections")
    p.add_argument("--mqtt", metavar="HOST:PORT", help="connect without an account (a development broker only)")
    p.set_defaults(func=cmd_fleet)

