"""``smartmeter cloud web``: serve the outage service's web pages."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from appliance.clock import SystemClock

    from ..accounts import Accounts
    from ..outage.cli import host_port
    from ..outage.storage import open_storage
    from ..secrets import load_or_create_key
    from .app import create_app

    host, port = host_port(args.listen, 8000)
    app = create_app(open_storage(args.db), SystemClock(), key=load_or_create_key(args.secret_file),
                     accounts=Accounts(args.accounts))
    print(f"outage web pages on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
    return 0


def register(groups) -> None:
    from ..outage.cli import ACCOUNTS_FILE, DB_HELP, _link_args

    p = groups["cloud"].add_parser(
        "web", help="the outage service's web pages: the public outage lookup and the operations site",
        description="Serve the public outage lookup (per prefecture, then per city and district; live, no personal "
                    "data) and, under /ops/, the operators' outage lists, forms and audit log (sign-in with the "
                    "accounts of `smartmeter cloud operator add`). Japanese first; ?lang=en for English.",
        epilog="example: smartmeter cloud web --db sqlite:///outage.db --listen 127.0.0.1:8000")
    p.add_argument("--db", default=None, help=DB_HELP)
    p.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:8000; put a TLS proxy in front to serve the public)")
    p.add_argument("--accounts", type=Path, default=ACCOUNTS_FILE,
                   help=f"the operators' accounts (default {ACCOUNTS_FILE})")
    _link_args(p)
    p.set_defaults(func=cmd_web)
