"""Shared fixtures: real components started by the tests themselves."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator

import pytest

from devkit.isolation import isolated_environment

# Before anything imports drivers.cards or talks PC/SC: this run's own virtual readers, so two runs on
# one machine never share them (the emulation processes and subprocesses the tests start inherit it).
os.environ.update(isolated_environment(Path(tempfile.mkdtemp(prefix="smartmeter-test-"))))

from appliance.clock import JST, ManualClock  # noqa: E402
from devkit.mosquitto import LocalMosquitto  # noqa: E402


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


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory):
    """A real pcscd offering the three vpcd slots: the running one if it has them, else one started here."""
    from devkit.pcscd import Pcscd, missing_prerequisites, offered_readers
    from drivers.cards.vpcd import EMULATION_SLOTS

    missing = missing_prerequisites()
    if missing:
        pytest.fail("PC/SC emulation is not installed: " + "; ".join(missing), pytrace=False)
    wanted = {s.reader for s in EMULATION_SLOTS}
    present = offered_readers()
    if present is not None:
        if not wanted <= set(present):
            pytest.fail(f"a pcscd is already running without the emulation slots {sorted(wanted - set(present))}; "
                        "stop it, or start it as `smartmeter sim card serve` does (devkit/pcscd.py)", pytrace=False)
        yield None
        return
    daemon = Pcscd(tmp_path_factory.mktemp("pcscd"))
    try:
        daemon.start()
    except RuntimeError as exc:
        pytest.fail(f"could not start pcscd: {exc}", pytrace=False)
    yield daemon
    daemon.stop()
