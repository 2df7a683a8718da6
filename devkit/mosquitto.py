"""Start a private Mosquitto on a loopback port: for the demo, the tests and the benchmarks.

On a Pi the meter talks to the utility's broker; this is only the local, embedded default.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
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

    ``users`` maps user name to password; when given, anonymous access is refused.
    """

    port: int = 0
    users: dict[str, str] = field(default_factory=dict)
    workdir: Path | None = None
    child: ChildProcess | None = None

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def start(self) -> "LocalMosquitto":
        self.port = self.port or free_port()
        self.workdir = Path(self.workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = [
            f"listener {self.port} 127.0.0.1",
            "persistence true",  # sessions and queued messages survive a broker restart
            f"persistence_location {self.workdir}/",
            "max_queued_messages 0",  # unlimited: the meter's outbox is the real queue
            "max_inflight_messages 0",
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
        self.child = ChildProcess([find_mosquitto(), "-c", conf_path], self.workdir / "mosquitto.log")
        self.child.start(self._listening, what=f"mosquitto on port {self.port}")
        return self

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
