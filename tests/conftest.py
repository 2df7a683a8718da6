"""Shared fixtures: real components started by the tests themselves."""
from __future__ import annotations

from datetime import datetime

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
