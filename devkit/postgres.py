"""A throwaway PostgreSQL cluster in a temporary directory, for tests and benchmarks.

Uses Debian's server binaries (``apt-get install postgresql``) with ``initdb``/``pg_ctl`` on a free
loopback port. PostgreSQL refuses to run as root, so as root the cluster runs as ``postgres``.
"""
from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .ports import free_port


def find_pg_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise FileNotFoundError("PostgreSQL server binaries not found (Debian: apt-get install postgresql)")


@dataclass
class TempPostgres:
    port: int = 0
    workdir: Path | None = None
    user: str = "postgres"  # the database superuser name
    run_as: str | None = field(default=None)  # OS user owning the cluster; root needs one

    def _cmd(self, *args: str) -> list[str]:
        return ["runuser", "-u", self.run_as, "--", *args] if self.run_as else list(args)

    def start(self) -> "TempPostgres":
        bin_dir = find_pg_bin()
        if os.geteuid() == 0 and self.run_as is None:
            self.run_as = "postgres"
        self.port = self.port or free_port()
        # pytest's tmp_path is private to root; the cluster's OS user must be able to enter its directory
        self.workdir = Path(tempfile.mkdtemp(prefix="outage-pg-"))
        data = self.workdir / "data"
        if self.run_as:
            pw = pwd.getpwnam(self.run_as)
            os.chown(self.workdir, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            self._cmd(str(bin_dir / "initdb"), "-D", str(data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-locale"),
            check=True, capture_output=True,
        )
        options = f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        subprocess.run(
            self._cmd(str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.workdir / "log"), "-w", "start"),
            check=True, capture_output=True,
        )
        self._bin = bin_dir
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = name or "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.workdir is None:
            return
        subprocess.run(
            self._cmd(str(self._bin / "pg_ctl"), "-D", str(self.workdir / "data"), "-m", "immediate", "-w", "stop"),
            capture_output=True,
        )
        shutil.rmtree(self.workdir, ignore_errors=True)
        self.workdir = None

    def __enter__(self) -> "TempPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
