"""The command-line options every cloud command shares to reach the broker: a party's settings
file, as ``smartmeter broker`` writes it. Passwords never go on a command line (``ps`` shows it to
every local user): they come from the ``password_file`` the settings name, mode 0600."""
from __future__ import annotations

import argparse

from appliance.config import MqttSection, load_mqtt_config


def add_broker_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mqtt-config", metavar="FILE",
                   help="this party's [mqtt] settings: host, port, user name, password_file and TLS files "
                        "(as `smartmeter broker init` writes them in DIR/parties/NAME.toml)")
    p.add_argument("--mqtt", metavar="HOST:PORT",
                   help="connect without an account instead (only a development broker allows that; "
                        "default 127.0.0.1:1883)")


def broker_from_args(args: argparse.Namespace) -> MqttSection:
    if args.mqtt_config and args.mqtt:
        raise SystemExit("give --mqtt-config or --mqtt, not both")
    if args.mqtt_config:
        return load_mqtt_config(args.mqtt_config)
    host, _, port = (args.mqtt or "127.0.0.1:1883").rpartition(":")
    if not host or not port.isdigit():
        raise SystemExit(f"--mqtt wants HOST:PORT, not {args.mqtt!r}")
    return MqttSection(host=host, port=int(port))
