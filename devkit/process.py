"""One lifecycle for the child processes the development tools start (Mosquitto, pcscd, the
emulated system): start with output to a log file, wait until ready, stop politely then firmly."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence


class ChildFailed(RuntimeError):
    """The child exited or never became ready; the message ends with the tail of its log."""


class ChildProcess:
    """``argv`` run with stdout and stderr appended to ``log_path``."""

    def __init__(self, argv: Sequence[str], log_path: Path, *, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.cwd = cwd
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, ready: Callable[[], bool], *, timeout: float = 10.0, what: str = "") -> "ChildProcess":
        """Start and poll ``ready()`` until it is true; raise :class:`ChildFailed` if the child exits
        first or ``timeout`` passes (the child is stopped then)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        name = what or os.path.basename(self.argv[0])
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.proc = None
                raise ChildFailed(f"{name} exited with {code}; {self.log_path}:\n{self.log_tail()}")
            try:
                if ready():
                    return self
            except Exception:  # not ready yet (e.g. connection refused)
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise ChildFailed(f"{name} was not ready within {timeout:g} s; {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
