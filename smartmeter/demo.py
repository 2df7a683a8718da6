"""``smartmeter demo``: the whole system in emulation, with a live view of what is measured and who
receives what.

A simulated household day runs fast (default 60x: one simulated minute per real second). The meter
starts with TEPCO-EP as its power company and HEMS-LAB as a data company; two contract changes are
stored at once, as if from cards: a switch to ENEOS-P at 06:00 and the end of HEMS-LAB's contract at
08:00. Each company's own server shows exactly the data types it is owed, and nothing else.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from appliance.clock import JST
from appliance.config import parse_duration
from appliance.datatypes import parse_data_types
from appliance.domain import Action, Company, ContractChange, Role
from appliance.schedule import parse_switch

from . import demo_view
from .demo_web import DemoWeb, WebNotStarted
from .emulation import EmulatedSystem, demo_start_time, publish

DEFAULT_WORKDIR = Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "smartmeter-demo"


def register(groups) -> None:
    p = groups["demo"]
    p.description = __doc__.split("\n\n")[0].split(": ", 1)[1]
    p.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)")
    p.add_argument("--interval", default="1m", help="measurement interval in simulated time (default 1m)")
    p.add_argument("--duration", type=float, help="stop after this many real seconds (default: until Ctrl-C)")
    p.add_argument("--plain", action="store_true", help="print lines instead of the live screen (automatic without a TTY)")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the demo keeps its stores (wiped at start)")
    p.add_argument("--web-port", type=int, default=8000,
                   help="where the web pages listen, on 127.0.0.1 (default 8000)")
    p.add_argument("--no-web", action="store_true", help="do not serve the web pages")
    p.add_argument("--no-ui", action="store_true",
                   help="do not open the touch-screen emulation beside the live view even if a display is present")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    # With a display, the touch screen's desktop emulation opens beside this view, on the same meter.
    with_ui = not args.no_ui and bool(os.environ.get("DISPLAY")) and _ui_available()
    shutil.rmtree(args.workdir, ignore_errors=True)
    system = EmulatedSystem(args.workdir, meter_id="DEMO-0001", interval=parse_duration(args.interval, "--interval"),
                            speed=args.speed, start=demo_start_time(), commissioned=("TEPCO-EP", "HEMS-LAB"),
                            card_slots=with_ui).start_all()
    _store_demo_changes(system)
    try:
        web = None if args.no_web else DemoWeb(system, args.web_port).start()
    except WebNotStarted as exc:
        system.stop_all()
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    if web is not None:
        print(web.banner(), flush=True)
    control = ui = None
    if with_ui:
        control = publish(system)
        ui = subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "ui", "--attach", str(args.workdir)])
    plain = args.plain or not sys.stdout.isatty()
    deadline = time.monotonic() + args.duration if args.duration else None
    running = (lambda: ui.poll() is None) if ui else (lambda: True)  # closing the window ends the demo
    try:
        if plain:
            _run_plain(system, deadline, running)
        else:
            _run_live(system, deadline, running)
    except KeyboardInterrupt:
        pass
    finally:
        if ui is not None and ui.poll() is None:
            ui.terminate()
            ui.wait(10)
        if control is not None:
            control.close()
        if web is not None:
            web.stop()
        system.stop_all()
    _print_summary(system)
    return 0


def _ui_available() -> bool:
    from importlib.util import find_spec

    return find_spec("kivy") is not None  # looked up, not imported: Kivy starts logging on import


def _store_demo_changes(system: EmulatedSystem) -> None:
    day = system.clock.now().astimezone(JST).replace(hour=0, minute=0, second=0, microsecond=0)
    by_code = {c.code: c for c in system.companies}
    eneos = by_code["ENEOS-P"]
    system.api.submit_change(ContractChange(
        kind=Role.SUPPLY, action=Action.CONTRACT, company=Company(eneos.code, eneos.name),
        switch=parse_switch((day + timedelta(hours=6)).isoformat()),
        data_types=parse_data_types(eneos.data_types),
        menu="ENEOSでんきV", source="demo"))
    system.api.submit_change(ContractChange(
        kind=Role.DATA, action=Action.ABOLISH, company=Company("HEMS-LAB", by_code["HEMS-LAB"].name),
        switch=parse_switch((day + timedelta(hours=8)).isoformat()), source="demo"))


def _snapshot(system: EmulatedSystem) -> dict:
    view = system.api.view()
    received = {}
    for code, server in system.servers.items():
        data = server.data()
        received[code] = {"count": len(data), "last": data[-1] if data else None,
                          "events": [e["event"] for e in server.events()], "summary": server.received()}
    return {"view": view, "received": received, "sample": system.emulator.measure()}


def _run_plain(system: EmulatedSystem, deadline: float | None, running) -> None:
    while running() and (deadline is None or time.monotonic() < deadline):
        time.sleep(2)
        s = _snapshot(system)
        v = s["view"]
        r = v.last_reading or {}
        got = " ".join(f"{c}={x['count']}" for c, x in s["received"].items())
        supply = next((c.company.code for c in v.in_force if c.role == "supply"), "-")
        print(f"{v.now.astimezone(JST):%H:%M} JST  power {demo_view.value(r.get('power_w'), 'W')} "
              f"({demo_view.flow(r.get('power_w'))})  energy {demo_view.value(r.get('energy_wh'), 'Wh')}  "
              f"power company {supply}  waiting to send {v.queued}  readings received: {got}", flush=True)


def _run_live(system: EmulatedSystem, deadline: float | None, running) -> None:
    demo_view.run_live(_snapshot, system, deadline, running)


def _print_summary(system: EmulatedSystem) -> None:
    print("\nDemo finished. What each company's server stored:")
    for code, server in system.servers.items():
        got = server.received()
        print(f"  {code:<9} {got.data} readings, {got.events} events, {got.duplicates} duplicates dropped")
    print(f"Stores kept in {system.workdir}")
