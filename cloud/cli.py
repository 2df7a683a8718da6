"""``smartmeter cloud company|received``: run an example company server and see what it received."""
from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys

from .broker_options import add_broker_options, broker_from_args
from .company_server import CompanyServer, read_data, read_events, summary


def register(groups) -> None:
    cloud = groups["cloud"]
    p = cloud.add_parser(
        "company", help="run an example company server (receives, dedupes and stores its meters' data)",
        description="Subscribe to companies/{CODE}/meters/+/data|events, store each reading once "
                    "(dedupe on meter_id+seq), and keep it in a SQLite file.",
        epilog="example: smartmeter cloud company --code TEPCO-EP --mqtt-config /etc/smartmeter/broker/parties/TEPCO-EP.toml "
               "--db tepco.sqlite3")
    p.add_argument("--code", required=True, help="the company code")
    add_broker_options(p)
    p.add_argument("--db", required=True, help="SQLite file for what is received")
    p.add_argument("--share-group", help="scale out: join a $share/GROUP shared subscription")
    p.set_defaults(func=cmd_company)

    p = cloud.add_parser("received", help="print what an example company server has stored",
                         description="Summary, then the stored readings and events as JSON lines.")
    p.add_argument("--db", required=True)
    p.add_argument("--meter", help="only this meter id")
    p.add_argument("--summary", action="store_true", help="only the counts")
    p.set_defaults(func=cmd_received)


def cmd_company(args: argparse.Namespace) -> int:
    server = CompanyServer(args.code, broker_from_args(args), args.db, share_group=args.share_group).start()
    stop = server.finished  # a signal, or a receiving loop that cannot go on (then exit 1: systemd restarts us)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop()
    if server.failure is not None:
        print(f"company {args.code}: stopped receiving: {server.failure}", file=sys.stderr)
        return 1
    return 0


def cmd_received(args: argparse.Namespace) -> int:
    db = sqlite3.connect(args.db)
    print(json.dumps(summary(db).__dict__))
    if not args.summary:
        for row in read_data(db, args.meter) + read_events(db, args.meter):
            print(json.dumps(row, ensure_ascii=False))
    return 0
