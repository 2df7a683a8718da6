"""The meter service under systemd's protocols, with a socket of the test's own standing in for
systemd: READY=1 once up, WATCHDOG=1 from the loop, STOPPING=1 on SIGTERM; journal entries with fields."""
from __future__ import annotations

import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from appliance.clock import SystemClock
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile
from smartmeter.systemd import JournalHandler, Notifier


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(15)
    yield sock, str(path)
    sock.close()


def test_the_watchdog_is_fed_at_half_its_period(listener):
    sock, path = listener
    now = [100.0]
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"}, monotonic=lambda: now[0])
    assert notifier.watchdog_s == 10.0
    sent = []
    sock.settimeout(0.2)
    for t in (100.0, 101.0, 104.9, 105.0, 106.0, 110.0):
        now[0] = t
        notifier.heartbeat()
        try:
            sent.append((t, sock.recv(100)))
        except TimeoutError:
            pass
    assert sent == [(100.0, b"WATCHDOG=1"), (105.0, b"WATCHDOG=1"), (110.0, b"WATCHDOG=1")]


def test_no_notify_socket_no_watchdog_for_another_process():
    assert not Notifier({}).active
    assert Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "5000000", "WATCHDOG_PID": "1"}).watchdog_s is None


def parse_entry(data: bytes) -> dict[str, str]:
    """journald's native format: NAME=value lines, or NAME, newline, 64-bit length, value, newline."""
    fields, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            name, value = line.split(b"=", 1)
            i = nl + 1
        else:
            name, size = line, struct.unpack("<Q", data[nl + 1:nl + 9])[0]
            value = data[nl + 9:nl + 9 + size]
            assert data[nl + 9 + size:nl + 10 + size] == b"\n"
            i = nl + 10 + size
        fields[name.decode()] = value.decode()
    return fields


def test_journal_entries_carry_the_meter_id_priority_and_traceback(listener):
    sock, path = listener
    log = logging.getLogger("smartmeter.test-journal")
    handler = JournalHandler("smartmeter-meter", {"meter_id": "MTR-0001"}, address=path)
    log.addHandler(handler)
    try:
        try:
            raise ValueError("bad reply")
        except ValueError:
            log.exception("meter step failed; retrying next tick")
    finally:
        log.removeHandler(handler)
    entry = parse_entry(sock.recv(65536))
    assert entry["MESSAGE"] == "meter step failed; retrying next tick"
    assert entry["PRIORITY"] == "3" and entry["SYSLOG_IDENTIFIER"] == "smartmeter-meter"
    assert entry["METER_ID"] == "MTR-0001" and entry["LOGGER"] == "smartmeter.test-journal"
    assert entry["EXCEPTION"].startswith("Traceback") and "ValueError: bad reply" in entry["EXCEPTION"]
    assert entry["CODE_FUNC"] == "test_journal_entries_carry_the_meter_id_priority_and_traceback"


def test_the_service_reports_ready_feeds_the_watchdog_and_says_it_stops(listener, broker, tmp_path):
    sock, path = listener
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    port = emulator.start_tcp()
    config = tmp_path / "meter.toml"
    config.write_text(f'[meter]\nid = "M1"\nstore = "meter.sqlite3"\nmeasurement_interval = "1s"\ntick = "100ms"\n'
                      f'[chip]\nprofile = "sdm120"\ntcp = "127.0.0.1:{port}"\n' + broker.mqtt_toml("meter", "M1"))
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "appliance", "run", "--config", str(config)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first = sock.recv(1000).decode().splitlines()
        assert first[0] == "READY=1" and first[1].startswith("STATUS=meter M1: measuring every")
        beats = [sock.recv(100) for _ in range(3)]  # at least every 0.5 s while the loop runs
        assert beats == [b"WATCHDOG=1"] * 3
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if sock.recv(100) == b"STOPPING=1":
                break
        else:
            pytest.fail("no STOPPING=1")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        emulator.stop()
