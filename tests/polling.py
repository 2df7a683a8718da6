"""Waiting for real I/O (a broker, an SMTP server, a subprocess) in tests; simulated time never moves here."""
from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
