"""Shared fixtures: real components started by the tests themselves."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from datetime import datetime
from typing import Iterator

import pytest

from appliance.clock import JST, ManualClock
from smartmeter.mosquitto import LocalMosquitto


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free loopback port."""
    with LocalMosquitto(workdir=tmp_path / "mosquitto") as b:
        yield b


@pytest.fixture
def clock():
    """Simulated time, starting Monday 2026-11-23 00:00 JST."""
    return ManualClock(datetime(2026, 11, 23, 0, 0, tzinfo=JST))


@pytest.fixture
def pty_pair(tmp_path) -> Iterator[tuple[str, str]]:
    """A virtual null-modem cable: two linked ptys made by socat."""
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed (scripts/bootstrap installs it: apt-get install socat)")
    a, b = str(tmp_path / "ttyA"), str(tmp_path / "ttyB")
    proc = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (os.path.exists(a) and os.path.exists(b)):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("socat did not create the pty pair")
            time.sleep(0.02)
        yield a, b
    finally:
        proc.terminate()
        proc.wait(5)
