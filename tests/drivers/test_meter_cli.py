"""``smartmeter meter read`` and ``smartmeter sim modbus`` as the installer runs them."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from appliance.clock import JST, ScaledClock
from devkit.ports import free_port
from drivers.modbus.bridge import ModbusEndpoint
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.profiles import PROFILES

SMARTMETER = str(Path(sys.executable).with_name("smartmeter"))
FIELDS = ["voltage_v", "current_a", "power_w", "import_wh_total", "export_wh_total",
          "frequency_hz", "power_factor"]


def run(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([SMARTMETER, *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_meter_read_prints_one_sample(profile, tcp_emulator):
    _, endpoint = tcp_emulator(profile)
    result = run("meter", "read", "--profile", profile, "--tcp", f"127.0.0.1:{endpoint.port}",
                 "--address", "1", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    sample = json.loads(result.stdout)
    assert list(sample) == ["at", "ok", *FIELDS]
    assert sample["ok"] is True and 99 < sample["voltage_v"] < 103
    assert (sample["export_wh_total"] is None) == (profile == "pzem004t")


def test_meter_read_failure_exits_1_with_one_clear_line(tcp_emulator):
    emulator, endpoint = tcp_emulator("sdm120")
    emulator.faults.exception = True
    result = run("meter", "read", "--profile", "sdm120", "--tcp", f"127.0.0.1:{endpoint.port}",
                 "--timeout", "0.3", "--retries", "0")
    assert result.returncode == 1
    sample = json.loads(result.stdout)
    assert sample["ok"] is False and all(sample[f] is None for f in FIELDS)
    assert "exception reply 0x04" in sample["error"]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("smartmeter: meter read failed: sdm120 at address 1")


def test_meter_read_bad_arguments_are_named():
    result = run("meter", "read", "--profile", "sdm120", "--tcp", "nohost:port")
    assert result.returncode == 2 and "--tcp wants HOST:PORT" in result.stderr
    assert "smartmeter meter read --profile pzem004t --serial" in run("meter", "read", "--help").stdout
    assert "--fault" in run("sim", "modbus", "--help").stdout


def test_sim_modbus_serves_in_the_foreground(clock):
    port = free_port()
    proc = subprocess.Popen(
        [SMARTMETER, "sim", "modbus", "--profile", "sdm120", "--tcp", f"127.0.0.1:{port}",
         "--start", "2026-11-23T12:00+09:00", "--speed", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    chip = ModbusMeteringChip(PROFILES["sdm120"], ModbusEndpoint.tcp("127.0.0.1", port, 0.5),
                              clock=clock, retries=0)
    try:
        deadline = time.monotonic() + 10
        while not (sample := chip.read_sample()).ok:
            assert proc.poll() is None and time.monotonic() < deadline, "the emulator did not start"
            time.sleep(0.1)
        assert sample.power_w < 0  # noon with solar: export
        time.sleep(1.0)  # an hour of simulated time
        later = chip.read_sample()
        assert later.export_wh_total > sample.export_wh_total + 500
    finally:
        chip.close()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "emulating sdm120 at address 1" in out and "stopped after" in out


def test_scaled_clock_runs_fast():
    start = datetime(2026, 11, 23, 6, 0, tzinfo=JST)
    clock = ScaledClock(start, speed=3600)
    time.sleep(0.05)
    assert timedelta(minutes=2) < clock.now() - start < timedelta(minutes=30)
    with pytest.raises(ValueError):
        ScaledClock(datetime(2026, 11, 23), 2)
