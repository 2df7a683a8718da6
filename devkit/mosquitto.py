"""Start a private Mosquitto on a loopback port: for the demo, the tests and the benchmarks.

On a Pi the meter talks to the utility's broker; this is only the local, embedded default.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port
from .process import ChildProcess


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError("mosquitto is not installed (Debian: apt-get install mosquitto)")


@dataclass
class LocalMosquitto:
    """A real Mosquitto broker bound to 127.0.0.1 on a free port.

    By default the broker is set up by :class:`cloud.broker.BrokerDir` exactly as ``smartmeter broker
    init`` sets up a production one -- accounts, the ACLs of interfaces.md section 2, and with ``tls``
    mutual TLS -- for ``parties`` and any added later by :meth:`account`; :meth:`settings` gives each
    party its ``[mqtt]`` settings. ``users`` (name -> password) is a bare password file without ACLs,
    for tests of the login alone. ``anonymous``: no accounts at all, only for tests of what anonymous
    clients are refused.
    """

    port: int = 0
    users: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    child: ChildProcess | None = None
    parties: tuple = ()  # of cloud.broker.Party
    tls: bool = False
    anonymous: bool = False
    conf_path: Path | None = None  # the mosquitto.conf in use, once started

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> "LocalMosquitto":
        self.port = self.port or free_port()
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self._plain_conf() if self.users or self.anonymous else self._secure_conf()
        self.child = ChildProcess([find_mosquitto(), "-c", self.conf_path], self.workdir / "mosquitto.log")
        self.child.start(self._listening, what=f"mosquitto on port {self.port}")
        return self

    def _secure_conf(self) -> Path:
        from cloud.broker import BrokerDir, BrokerSetup

        folder = BrokerDir(self.workdir / "broker")
        if not folder.setup_file.exists():  # a restart keeps the accounts
            folder.init(BrokerSetup(self.port, "localhost", self.host, self.tls, tuple(self.parties)),
                        run_as="root" if os.geteuid() == 0 else None)
        return folder.path / "mosquitto.conf"

    def account(self, kind: str, name: str):
        """The settings of party ``name``, adding it (and reloading the broker) if it has none yet."""
        from cloud.broker import BrokerDir, Party

        folder = BrokerDir(self.workdir / "broker")
        if not any(p.name == name for p in folder.load().parties):
            folder.add((Party(kind, name),))
            if self.child is not None and self.child.proc is not None:
                self.child.proc.send_signal(signal.SIGHUP)  # mosquitto re-reads its accounts and ACLs
                time.sleep(0.2)
        return self.settings(name)

    def party_file(self, kind: str, name: str) -> Path:
        """Party ``name``'s settings file (added if new): what a cloud command takes as ``--mqtt-config``."""
        self.account(kind, name)
        return self.workdir / "broker" / "parties" / f"{name}.toml"

    def mqtt_section(self, kind: str, name: str) -> dict:
        """The ``[mqtt]`` keys for party ``name`` (added if new), paths absolute: for a meter's config."""
        m = self.account(kind, name)
        out = {"host": m.host, "port": m.port, "username": m.username,
               "password_file": str(self.workdir / "broker" / "parties" / f"{name}.secret")}
        if m.tls:
            out.update(tls=True, ca_file=str(m.ca_file), cert_file=str(m.cert_file), key_file=str(m.key_file))
        return out

    def mqtt_toml(self, kind: str, name: str) -> str:
        """:meth:`mqtt_section` as TOML text, headed ``[mqtt]``."""
        m = self.account(kind, name)
        lines = ["[mqtt]", f'host = "{m.host}"', f"port = {m.port}", f'username = "{m.username}"',
                 f'password_file = "{self.workdir / "broker" / "parties" / f"{name}.secret"}"']
        if m.tls:
            lines += ["tls = true", f'ca_file = "{m.ca_file}"', f'cert_file = "{m.cert_file}"', f'key_file = "{m.key_file}"']
        return "\n".join(lines) + "\n"

    def endpoint(self):
        """Host and port without an account (``appliance.config.MqttSection``): what an anonymous client has."""
        from appliance.config import MqttSection

        return MqttSection(host=self.host, port=self.port)

    def settings(self, name: str):
        """The ``[mqtt]`` settings (``appliance.config.MqttSection``) of party ``name``."""
        from appliance.config import load_mqtt_config

        return load_mqtt_config(self.workdir / "broker" / "parties" / f"{name}.toml")

    def _plain_conf(self) -> Path:
        from cloud.broker import MAX_PACKET_SIZE

        conf = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",  # sessions and queued messages survive a broker restart
            f"persistence_location {self.workdir}/",
            "max_queued_messages 0",  # unlimited: the meter's outbox is the real queue
            "max_inflight_messages 0",
            f"max_packet_size {MAX_PACKET_SIZE}",  # as a production broker: no 16 MB message reaches a handler
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            conf.append("user root")  # else it drops to 'mosquitto', which cannot read our private temp dir
        if self.users:
            pwfile = self.workdir / "passwd"
            pwfile.write_text("")
            for user, password in self.users.items():
                subprocess.run(
                    [shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd", "-b", str(pwfile), user, password],
                    check=True,
                    capture_output=True,
                )
            os.chmod(pwfile, 0o600)
            conf += ["allow_anonymous false", f"password_file {pwfile}"]
        else:
            conf.append("allow_anonymous true")
        conf_path = self.workdir / "mosquitto.conf"
        conf_path.write_text("\n".join(conf) + "\n")
        return conf_path

    def _listening(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=0.2):
            return True

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.running

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        self.child = None

    def restart(self) -> None:
        """Stop and start again on the same port (a broker outage and its end)."""
        self.stop()
        self.start()

    def __enter__(self) -> "LocalMosquitto":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
