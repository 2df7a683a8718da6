"""``smartmeter cloud company|received``: run an example company server and see what it received."""
from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys

from .company_server import CompanyServer, read_data, read_events, summary


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"--broker wants HOST:PORT, not {text!r}")
    return host, int(port)


def register(groups) -> None:
    cloud = groups["cloud"]
    p = cloud.add_parser(
        "company", help="run an example company server (receives, dedupes and stores its meters' data)",
        description="Subscribe to companies/{CODE}/meters/+/data|events, store each reading once "
                    "(dedupe on meter_id+seq), and keep it in a SQLite file.",
        epilog="example: smartmeter cloud company --code TEPCO-EP --broker 127.0.0.1:1883 --db tepco.sqlite3")
    p.add_argument("--code", required=True, help="the company code")
    p.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883), help="HOST:PORT (default 127.0.0.1:1883)")
    p.add_argument("--db", required=True, help="SQLite file for what is received")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--share-group", help="scale out: join a $share/GROUP shared subscription")
    p.set_defaults(func=cmd_company)

    p = cloud.add_parser("received", help="print what an example company server has stored",
                         description="Summary, then the stored readings and events as JSON lines.")
    p.add_argument("--db", required=True)
    p.add_argument("--meter", help="only this meter id")
    p.add_argument("--summary", action="store_true", help="only the counts")
    p.set_defaults(func=cmd_received)


def cmd_company(args: argparse.Namespace) -> int:
    host, port = args.broker
    server = CompanyServer(args.code, host, port, args.db, username=args.username, password=args.password,
                           share_group=args.share_group).start()
    stop = server.finished  # a signal, or a receiving loop that cannot go on (then exit 1: systemd restarts us)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    if server.failure is not None:
        print(f"company {args.code}: stopped receiving: {server.failure!r}", file=sys.stderr)
        return 1
    return 0


def cmd_received(args: argparse.Namespace) -> int:
    db = sqlite3.connect(args.db)
    print(json.dumps(summary(db).__dict__))
    if not args.summary:
        for row in read_data(db, args.meter) + read_events(db, args.meter):
            print(json.dumps(row, ensure_ascii=False))
    return 0
