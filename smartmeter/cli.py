"""``smartmeter``: one console script, one subcommand group per area.

Each area owns its commands and registers them here through a ``register(groups)`` function, so
this module stays a thin dispatcher. Areas are imported lazily by name so that, e.g.,
``smartmeter meter read`` never imports the cloud handlers.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from appliance.errors import MeterError

GROUPS: dict[str, str] = {
    "meter": "installer's checks of the metering chip (e.g. read one sample)",
    "appliance": "the meter service and its contract data",
    "sim": "emulators that speak the real protocols (Modbus chip, ...)",
    "cloud": "cloud handlers and the example company servers",
    "card": "contract cards (a company's tool)",
    "broker": "set up the MQTT broker: accounts, ACLs and TLS for meters, companies and operators",
    "doctor": "the installer's check of every configured part, in plain words",
    "ui": "the touch screen",
    "demo": "run the whole system in emulation",
    "bench": "benchmarks that print figures and ratios",
}

# Groups that are one command rather than a family of subcommands.
LEAVES = frozenset({"demo", "ui", "doctor"})

# Modules that define ``register(groups: dict[str, argparse._SubParsersAction]) -> None``.
AREAS: tuple[str, ...] = (
    "drivers.modbus.cli",
    "drivers.cards.cli",
    "appliance.cli",
    "smartmeter.service",
    "smartmeter.doctor",
    "cloud.cli",
    "cloud.outage.cli",
    "cloud.broker",
    "cloud.accounts",
    "cloud.web.cli",
    "smartmeter.kiosk",
    "smartmeter.demo",
    "smartmeter.bench",
)


# Third-party packages by the extra that installs them (setup.cfg): an area whose package is not
# installed on this machine (e.g. the Modbus driver on a cloud server) is left out of the commands.
EXTRA_OF: dict[str, str] = {"pymodbus": "meter", "serial": "meter", "gpiozero": "meter", "smartcard": "meter",
                            "nfc": "meter", "kivy": "ui", "psycopg": "cloud", "aiosmtpd": "cloud", "rich": "cloud",
                            "starlette": "cloud", "jinja2": "cloud", "uvicorn": "cloud"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartmeter",
        description="Switchable smart meter: meter service, emulators, cloud handlers and tools.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    top = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)
    groups: dict[str, argparse._SubParsersAction | argparse.ArgumentParser] = {}
    for name, help_text in GROUPS.items():
        p = top.add_parser(name, help=help_text, description=help_text)
        if name in LEAVES:
            groups[name] = p  # a command of its own: the area adds arguments and func
        else:
            groups[name] = p.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    missing: dict[str, str] = {}
    for module in AREAS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            package = (exc.name or "").split(".")[0]
            if package not in EXTRA_OF:
                raise
            missing[module] = EXTRA_OF[package]
            continue
        mod.register(groups)
    if missing:
        extras = ",".join(sorted(set(missing.values())))
        parser.epilog = (f"Not installed here: the commands of {', '.join(sorted(missing))} "
                         f"(pip install 'smartmeter[{extras}]').")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except MeterError as exc:
        print(f"smartmeter: error: {exc}", file=sys.stderr)
        return 2
    except ConnectionError as exc:  # e.g. the broker refused this party's account or certificate
        print(f"smartmeter: error: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
