"""``smartmeter appliance contract|status|readings``: the household's and installer's local commands.

They work on the meter's store directly (SQLite is safe to share with the running service), and
a contract change goes through :func:`appliance.intake.accept_change`, the same path as a card.
"""
from __future__ import annotations

import argparse
import json
import os
from datetime import datetime, timedelta

from .clock import JST, SystemClock, iso
from .config import MeterConfig, load_config, parse_duration
from .datatypes import DataType, UnknownDataType, parse_data_types
from .domain import Action, Company, ContractChange, Role
from .errors import ChangeRejected, ConfigError
from .api import contract_overview
from .intake import accept_change, cancel_change
from .schedule import describe, parse_switch_text
from .sending import Sender
from .store import Store
from .trust import fields

DEFAULT_CONFIG = "/etc/smartmeter/meter.toml"


def add_config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", default=os.environ.get("SMARTMETER_CONFIG", DEFAULT_CONFIG),
                   help="the meter's TOML config (default: $SMARTMETER_CONFIG or %(default)s)")


def open_store(args: argparse.Namespace) -> tuple[MeterConfig, Store]:
    cfg = load_config(args.config)
    return cfg, Store(cfg.meter.store)


def register(groups) -> None:
    app = groups["appliance"]
    contract = app.add_parser("contract", help="view and change the contract data (56A/56B/56C)",
                              description="Contract data: list what is in force and pending, and store changes.")
    sub = contract.add_subparsers(dest="contract_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="contracts in force, pending changes, who receives which data")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    examples = ("examples:\n"
                "  smartmeter appliance contract add --kind supply --company TEPCO-EP --name '東京電力EP' \\\n"
                "      --data-types time,power,energy --switch immediate\n"
                "  smartmeter appliance contract add --kind supply --company ENEOS-P --data-types time,energy \\\n"
                "      --switch weekly:fri@18:00\n"
                "  smartmeter appliance contract add --kind data --company HEMS-LAB --data-types time,power \\\n"
                "      --switch 2026-12-01T00:00+09:00 --send-interval 1d --measure-interval 1h")
    p = sub.add_parser("add", help="store a new contract (supply or data) with its switch time",
                       epilog=examples, formatter_class=argparse.RawDescriptionHelpFormatter)
    _change_args(p, data_types=True, menu=True)
    p.set_defaults(func=cmd_change, action=Action.CONTRACT)

    p = sub.add_parser("abolish", help="end a contract (契約廃止) at the switch time")
    _change_args(p)
    p.set_defaults(func=cmd_change, action=Action.ABOLISH)

    p = sub.add_parser("menu", help="change the tariff menu of a contract in force")
    _change_args(p, menu=True)
    p.set_defaults(func=cmd_change, action=Action.MENU)

    p = sub.add_parser("cancel", help="cancel a pending change by its id")
    add_config_arg(p)
    p.add_argument("change_id", type=change_id)
    p.set_defaults(func=cmd_cancel)

    p = app.add_parser("status", help="what the meter measured, queued and delivered")
    add_config_arg(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = app.add_parser("readings", help="stored interval readings as JSON lines")
    add_config_arg(p)
    p.add_argument("--last", type=int, default=48, help="how many of the newest readings (default 48)")
    p.set_defaults(func=cmd_readings)


def _change_args(p: argparse.ArgumentParser, data_types: bool = False, menu: bool = False) -> None:
    add_config_arg(p)
    p.add_argument("--kind", choices=[r.value for r in Role], required=True,
                   help="supply: the power company; data: a data-utilization company")
    p.add_argument("--company", required=True, help="company code, e.g. TEPCO-EP")
    p.add_argument("--name", help="company name shown to the household")
    p.add_argument("--server", default="", help="the company's server (destination), informational")
    p.add_argument("--switch", required=True,
                   help="'immediate', an ISO date-time with offset (2026-12-01T00:00+09:00), "
                        "or weekly:mon@22:00,fri@07:00 (JST)")
    if data_types:
        p.add_argument("--data-types", required=True,
                       help="comma-separated: " + ",".join(d.value for d in DataType))
        p.add_argument("--send-interval", help="how often to send, e.g. 30m or 1d (default: the measurement interval)")
        p.add_argument("--measure-interval",
                       help="the company's own measurement interval, a multiple of the meter's, e.g. 1h: its data "
                            "comes as the meter's readings summed (energy) and averaged (power) over each "
                            "(default: the meter's measurement interval)")
    if menu:
        p.add_argument("--menu", required=p.prog.endswith("menu"), help="tariff menu code, e.g. 従量電灯B")


def cmd_change(args: argparse.Namespace) -> int:
    cfg, store = open_store(args)
    try:
        types = parse_data_types(args.data_types) if getattr(args, "data_types", None) else ()
    except UnknownDataType as exc:
        raise ChangeRejected(f"--data-types: {exc}") from None
    send = _duration(args, "send_interval")
    measure = _duration(args, "measure_interval")
    change = ContractChange(
        kind=Role(args.kind),
        action=args.action,
        company=Company(args.company, args.name or args.company, args.server),
        switch=parse_switch_text(args.switch),
        data_types=types,
        menu=getattr(args, "menu", None),
        send_interval=send,
        measure_interval=measure,
        source="cli",
    )
    change_id = accept_change(store, Sender(store, cfg.meter.id), change, SystemClock().now(),
                              cfg.meter.measurement_interval)
    print(f"stored change #{change_id}: {args.kind} {args.action.value} {args.company} at {describe(change.switch)}")
    return 0


def _duration(args: argparse.Namespace, name: str) -> timedelta | None:
    text = getattr(args, name, None)
    if not text:
        return None
    try:
        return parse_duration(text, "--" + name.replace("_", "-"))
    except ConfigError as exc:
        raise ChangeRejected(str(exc)) from None


def change_id(text: str) -> int:
    """A change id as argparse reads it: a whole number in 1..2^63-1 (SQLite's integer range)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= fields.MAX_SERIAL:
        raise argparse.ArgumentTypeError(f"{text} is outside 1..{fields.MAX_SERIAL}")
    return value


def cmd_cancel(args: argparse.Namespace) -> int:
    _, store = open_store(args)
    if not cancel_change(store, args.change_id):
        raise ChangeRejected(f"change #{args.change_id} is not pending (see 'smartmeter appliance contract list')")
    print(f"cancelled change #{args.change_id}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    _, store = open_store(args)
    view = contract_overview(store).to_json()
    if args.json:
        print(json.dumps(view, ensure_ascii=False, indent=2))
        return 0
    print("In force:")
    for c in view["in_force"] or [{"role": "-", "company": "(none)", "name": "", "data_types": [], "menu": None}]:
        menu = f"  menu {c['menu']}" if c.get("menu") else ""
        measure = f"  measured every {_span(c['measure_interval_s'])}" if c.get("measure_interval_s") else ""
        print(f"  {c['role']:<6} {c['company']:<16} {c['name']:<16} receives {','.join(c['data_types'])}{menu}"
              f"{measure}")
    print("Pending changes:")
    for p in view["pending"] or [{"id": "-", "kind": "", "action": "(none)", "company": "", "switch": ""}]:
        measure = f"  measured every {_span(p['measure_interval_s'])}" if p.get("measure_interval_s") else ""
        print(f"  #{p['id']:<4} {p['kind']:<6} {p['action']:<8} {p['company']:<16} at {p['switch']}{measure}")
    return 0


def _span(seconds: float) -> str:
    """1800 -> 30 min, 3600 -> 1 h, 86400 -> 24 h: a measurement interval as a person reads it."""
    return f"{seconds / 3600:g} h" if seconds % 3600 == 0 else f"{seconds / 60:g} min"


def cmd_status(args: argparse.Namespace) -> int:
    cfg, store = open_store(args)
    last = store.last_reading()
    status = {
        "meter_id": cfg.meter.id,
        "now": iso(datetime.now(JST)),
        "last_reading": last,
        "queued": store.outbox_by_company(),
        "delivered": store.delivered_counts(),
        "link": store.get_meta("link"),
    }
    print(json.dumps(status, ensure_ascii=False, indent=None if args.json else 2))
    return 0


def cmd_readings(args: argparse.Namespace) -> int:
    _, store = open_store(args)
    for r in store.readings()[-args.last:]:
        print(json.dumps(r, ensure_ascii=False))
    return 0
