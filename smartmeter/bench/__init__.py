"""``smartmeter bench appliance|cards|ui|cloud|ingest|manager|email|web|soak``: benchmarks that print figures and
ratios, each against a bare baseline measured in the same run. Nothing asserts them; docs/benchmarks.md keeps
the recorded runs. Each benchmark module is imported only when its command runs."""
from __future__ import annotations

import argparse


def register(groups) -> None:
    bench = groups["bench"]
    p = bench.add_parser("appliance", help="meter service: Modbus, memory, outbox drain, latency",
                         description="Modbus transactions per sample, resident memory, outbox drain and "
                                     "sample-to-company latency of the meter service, each with a bare baseline.")
    p.add_argument("--readings", type=int, default=10_000, help="queued readings for the drain figure")
    p.add_argument("--samples", type=int, default=200, help="samples for transactions and latency")
    p.add_argument("--sim-seconds", type=int, default=3600, help="simulated seconds for the memory figure")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object too")
    p.set_defaults(func=lambda args: _run("appliance", "cmd_bench", args))
    child = bench.add_parser("appliance-memory-child", help=argparse.SUPPRESS)
    child.add_argument("--mqtt-json", required=True, help="the meter's [mqtt] section as JSON")
    child.add_argument("--chip-port", type=int, required=True)
    child.add_argument("--sim-seconds", type=int, required=True)
    child.add_argument("--db", required=True)
    child.set_defaults(func=lambda args: _run("appliance", "cmd_memory_child", args))

    p = bench.add_parser("soak", help="the meter service in real time at 1 s: resident memory over time",
                         description="Runs `smartmeter appliance run` for SECONDS of real time beside the chip "
                                     "emulator, a local broker and a company server; samples its RSS and prints "
                                     "the slope over the last half.")
    p.add_argument("--seconds", type=float, default=7200, help="real seconds to run (default 7200: two hours)")
    p.add_argument("--every", type=float, default=10.0, help="seconds between samples (default 10)")
    p.set_defaults(func=lambda args: _run("soak", "cmd_bench", args))

    p = bench.add_parser("web", help="outage web pages: server time per page, page weight, live update",
                         description="A store with many registrations and open outages; each page's server time "
                                     "p50/p99 against a bare page of the same size, its weight, and the time from a "
                                     "declared outage to the open page showing it in Chromium.")
    p.add_argument("--registrations", type=int, default=1_000_000, help="registrations in the store (default 1,000,000)")
    p.add_argument("--outages", type=int, default=10_000, help="open outages (default 10,000)")
    p.add_argument("--samples", type=int, default=100, help="requests per page, one at a time (default 100)")
    p.add_argument("--db", default=None,
                   help="storage URL; default: a temporary SQLite file ('postgresql' starts a temporary cluster)")
    p.add_argument("--no-browser", action="store_true", help="skip the live-update figure")
    p.set_defaults(func=lambda args: _run("web", "main", args))

    p = bench.add_parser("cards", help="contract cards: card inserted to document read through pcscd, vs a bare pyscard client",
                         description="Card inserted to document read, p50/p95/max, through the meter's PC/SC driver "
                                     "and through a bare pyscard client waiting on the same pcscd and reader (rounds "
                                     "alternate), as a ratio; the time to the stored change; and document "
                                     "verifications per second.")
    p.add_argument("--reads", type=int, default=30, help="card insertions to time (default 30)")
    p.set_defaults(func=lambda args: _run("cards", "cmd_bench", args))

    p = bench.add_parser("ui", help="UI frame time and touch latency vs an empty Kivy app; memory",
                         description="Runs the emulated UI, an empty Kivy app and a bare window under one Xvfb and "
                                     "prints CPU and frame time, touch-to-screen latency (ratios) and RSS.")
    from smartmeter.kiosk import parse_size

    p.add_argument("--size", type=parse_size, default=(800, 480))
    p.add_argument("--seconds", type=float, default=6.0, help="measuring time per app and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three apps, in rotating order (default 3)")
    p.set_defaults(func=lambda args: _run("ui", "cmd_bench", args))

    p = bench.add_parser("store", help="readings/s through the storage alone, PostgreSQL and SQLite, batched",
                         description="Readings/s stored by store_readings into a territory already holding a day.")
    p.add_argument("--meters", type=int, default=20_000, help="meters per window")
    p.set_defaults(func=lambda args: _run("store", "main", args))
    p = bench.add_parser("cloud", help="outage pipeline: live ingest and its TLS cost, dead letters, detection, e-mail rate",
                         description="Starts its own Mosquitto, SMTP sink and database, and prints figures and ratios.")
    p.add_argument("--meters", type=int, default=1_000_000, help="fleet for the detection figure (default 1,000,000)")
    p.add_argument("--ingest", type=int, default=100_000, help="readings for the ingest ratio (default 100,000)")
    p.add_argument("--emails", type=int, default=2_000, help="e-mails for the e-mail rate ratio (default 2,000)")
    p.add_argument("--db", default=None,
                   help="storage URL; default: a temporary SQLite file ('postgresql' starts a temporary cluster)")
    p.set_defaults(func=lambda args: _run("cloud", "main", args))

    p = bench.add_parser("ingest", help="collector capacity from a queued backlog; scaling over collector processes",
                         description="Drains a queued window of readings into a territory already holding data: one "
                                     "collector process vs a bare subscriber (ratio), per message and in concentrator "
                                     "batches; then 1, 2, 3 collector processes on PostgreSQL with CPU per reading.")
    p.add_argument("--meters", type=int, default=50_000, help="fleet size: readings in each queued window (default 50,000)")
    p.add_argument("--stored-windows", type=int, default=4, help="windows stored before the backlog (default 4)")
    p.add_argument("--db", nargs="*", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"],
                   help="databases for the capacity ratio (default both; none: skip it)")
    p.add_argument("--collectors", type=int, nargs="*", default=[1, 2, 3],
                   help="collector processes for the scaling figure on PostgreSQL (default 1 2 3; none: skip it)")
    p.add_argument("--memory-meters", type=int, nargs="*", default=[],
                   help="fleet sizes for the collector's peak memory, e.g. 100000 1000000 (default: skipped)")
    p.set_defaults(func=lambda args: _run("ingest", "main", args))


    p = bench.add_parser("manager", help="outage manager: tick time over a large fleet in a storm",
                         description="Loads a fleet with 1%% background silence and a storm of area outages, and "
                                     "times the manager's ticks: first, declaring, steady, and after a change.")
    p.add_argument("--meters", type=int, nargs="+", default=[100_000, 1_000_000],
                   help="fleet sizes, each in its own database (default 100,000 1,000,000)")
    p.add_argument("--storm", type=int, default=500, help="areas whose meters all sent a last gasp (default 500)")
    p.add_argument("--regions", type=int, default=1,
                   help="split the fleet's prefectures into N regions and time each region's manager beside the "
                        "whole territory's (default 1: the whole territory only)")
    p.add_argument("--db", default=None,
                   help="storage URL; default: a temporary SQLite file per fleet ('postgresql' starts a temporary cluster)")
    p.set_defaults(func=lambda args: _run("manager", "main", args))

    p = bench.add_parser("email", help="power loss to e-mail in a 1M-meter territory during a storm, real processes",
                         description="Loads a territory with 1%% background silence and a storm of open area outages, "
                                     "runs the real collector, manager and notifiers against Mosquitto and an SMTP sink "
                                     "process, cuts one area's power and times each customer's e-mail.")
    from cloud.outage.cli import duration

    p.add_argument("--meters", type=int, default=1_000_000, help="meters in the territory (default 1,000,000)")
    p.add_argument("--area", type=int, default=10_000, help="customers of the area that loses power (default 10,000)")
    p.add_argument("--storm", type=int, default=500, help="areas of 40 homes already out (default 500)")
    p.add_argument("--notifiers", type=int, default=3, help="notifier processes (default 3)")
    p.add_argument("--declaration-delay", type=duration, default=duration("30s"),
                   help="the manager's declaration delay (default 30s, as deployed)")
    p.add_argument("--db", default=None,
                   help="storage URL; default: a temporary SQLite file ('postgresql' starts a temporary cluster)")
    p.set_defaults(func=lambda args: _run("email", "main", args))


def _run(module: str, function: str, args: argparse.Namespace) -> int:
    import importlib

    return int(getattr(importlib.import_module(f"smartmeter.bench.{module}"), function)(args) or 0)
