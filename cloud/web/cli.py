"""``smartmeter cloud web``: serve the outage service's web pages."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def cmd_web(args: argparse.Namespace) -> int:
    import uvicorn

    from appliance.clock import SystemClock

    from appliance.config import load_mqtt_config

    from ..accounts import Accounts
    from ..switch_desk import MqttPublisher, load_desk
    from ..outage.cli import host_port
    from ..outage.mail import Sender
    from ..outage.storage import open_storage
    from ..secrets import load_or_create_key
    from .app import create_app
    from .mailer import Mailer

    host, port = host_port(args.listen, 8000)
    key = load_or_create_key(args.secret_file)
    smtp_host, smtp_port = host_port(args.smtp, 25)
    mailer = Mailer(Sender(key, address=args.sender, public_url=args.public_url),
                    site_url=args.site_url or f"http://{host}:{port}", smtp_host=smtp_host, smtp_port=smtp_port)
    clock = SystemClock()
    desks, publishers = [], []
    try:
        for directory in args.desk:
            publisher = MqttPublisher(load_mqtt_config(directory / "mqtt.toml"), f"desk-{directory.name}")
            publishers.append(publisher)
            desks.append(load_desk(directory, publish=publisher, clock=clock, secret=key))
        app = create_app(open_storage(args.db), clock, key=key, accounts=Accounts(args.accounts), mailer=mailer,
                         desks=desks)
        print(f"outage web pages on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False, server_header=False)
    finally:
        for publisher in publishers:
            publisher.close()
    return 0


def register(groups) -> None:
    from ..outage.cli import ACCOUNTS_FILE, DB_HELP, _link_args

    p = groups["cloud"].add_parser(
        "web", help="the outage service's web pages: the public outage lookup, registration and the operations site",
        description="Serve the public outage lookup (per prefecture, then per city and district; live, no personal "
                    "data), the customers' registration for outage e-mail (/register, confirmed by e-mail) and, "
                    "under /ops/, the operators' outage lists, forms and audit log (sign-in with the accounts of "
                    "`smartmeter cloud operator add`), and the customers' page (/mypage: their meter's contracts and remote "
                    "switching through the companies' desks). Japanese first; ?lang=en for English.",
        epilog="example: smartmeter cloud web --db sqlite:///outage.db --listen 127.0.0.1:8000")
    p.add_argument("--db", default=None, help=DB_HELP)
    p.add_argument("--listen", default="127.0.0.1:8000", metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:8000; put a TLS proxy in front to serve the public)")
    p.add_argument("--accounts", type=Path, default=ACCOUNTS_FILE,
                   help=f"the operators' accounts (default {ACCOUNTS_FILE})")
    p.add_argument("--smtp", default="127.0.0.1:25", metavar="HOST:PORT",
                   help="SMTP server for the registration's confirmation e-mails (default 127.0.0.1:25)")
    p.add_argument("--sender", default="teiden@example.jp", help="From address of those e-mails")
    p.add_argument("--site-url", default=None, metavar="URL",
                   help="the public address of these pages, for the links in e-mails (default http://LISTEN/)")
    p.add_argument("--desk", type=Path, action="append", default=[], metavar="DIR",
                   help="a company's switching desk for the customers' page (remote switching; repeatable): DIR "
                        "holds company.toml, the company's signing key company.key (0600), its registry "
                        "certificate company.cert and mqtt.toml, the desk's own broker account")
    _link_args(p)
    p.set_defaults(func=cmd_web)
