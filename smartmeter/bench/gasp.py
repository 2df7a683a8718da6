"""Figures of ``smartmeter bench appliance`` for the Pi itself: the last gasp's latency and the meter
service's CPU per sample as a share of one Pi Zero 2 W core.

* Supply loss to ``power_fail`` on the broker: the supply monitor's GPIO (gpiozero's mock pin, as
  configured) falls; the time until the grid operator's subscriber holds the status. Goal p99 < 100 ms.
* CPU per sample: CPU seconds (``time.process_time``) of the meter service alone in its process per
  1 s sample (the chip emulator runs in the parent), scaled to a Pi Zero 2 W core by the ratio of
  this machine's single-core 7-Zip rating (``7z b -mmt1``, run here, per 100% of a core) to the Zero 2 W's published one.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time

from appliance.config import parse_config
from appliance.supply import journal
from cloud.mqtt import connect, disconnect, make_client

from ..assembly import build_meter

# One Cortex-A53 core of a Pi Zero 2 W at 1000 MHz: 7-Zip's rating with one thread, 835 MIPS
# (Thomas Kaiser, "A quick look at RPi Zero 2 W", github.com/ThomasKaiser/Knowledge, 2021).
PI_ZERO_2W_7ZIP_MIPS = 835.0
SUPPLY_PIN = 22


def bench_last_gasp(broker, chip_port: int, cuts: int, pct) -> dict:
    """``cuts`` supply cuts through the configured GPIO; each one's loss-to-``power_fail``-on-the-broker.
    ``broker``: the bench's broker (devkit.mosquitto.LocalMosquitto)."""
    meter_id = "BENCH-GASP"
    arrived: dict[str, threading.Event] = {"power_fail": threading.Event(), "power_restored": threading.Event()}
    at: dict[str, float] = {}
    account = broker.account("operator", "bench-gasp")
    sub = make_client(account)

    def on_message(_c, _u, msg):
        state = json.loads(msg.payload)["state"]
        if state in arrived:
            at[state] = time.perf_counter()
            arrived[state].set()

    sub.on_message = on_message
    connect(sub, account)
    sub.subscribe(f"meters/{meter_id}/status", qos=1)
    with tempfile.TemporaryDirectory() as d:
        from appliance.clock import SystemClock

        cfg = parse_config({"meter": {"id": meter_id, "measurement_interval": "1s", "store": f"{d}/meter.sqlite3"},
                            "chip": {"profile": "sdm120", "tcp": f"127.0.0.1:{chip_port}"},
                            "mqtt": {**broker.mqtt_section("meter", meter_id), "will_delay": 0},
                            "supply": {"pin": SUPPLY_PIN, "pull_up": True, "pin_factory": "mock"}})
        meter = build_meter(cfg, SystemClock()).start()
        while not meter.uplink.state().connected:
            time.sleep(0.01)
        time.sleep(0.2)  # the retained "online" has come and gone
        pin = meter.supply_monitor.device.pin
        lost: list[float] = []
        for _ in range(cuts):
            for state in arrived:
                arrived[state].clear()
            t0 = time.perf_counter()
            pin.drive_low()
            arrived["power_fail"].wait(5)
            lost.append(at.get("power_fail", float("nan")) - t0 if arrived["power_fail"].is_set() else float("nan"))
            pin.drive_high()
            arrived["power_restored"].wait(5)
        journaled = len(journal(meter.store))
        meter.close()
    disconnect(sub)
    p50, p99 = pct(lost, 50), pct(lost, 99)
    missing = sum(1 for x in lost if x != x)
    print(f"  Supply loss to power_fail on the broker: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
          f"(goal p99 < 100 ms; {cuts} cuts, {missing} missing, {journaled} supply changes journaled)")
    return {"gasp_p50_ms": p50 * 1000, "gasp_p99_ms": p99 * 1000, "gasp_missing": missing}


def seven_zip_single_core_mips() -> float | None:
    """This machine's 7-Zip rating with one thread per 100% of a core (the R/U column of the 'Tot:' line
    of ``7z b -mmt1``: the rating divided by the CPU share the benchmark got, so a busy machine shared
    with others still yields its core's speed), or None without 7z."""
    exe = shutil.which("7z") or shutil.which("7za")
    if exe is None:
        return None
    out = subprocess.run([exe, "b", "-mmt1"], capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"^Tot:\s+\d+\s+(\d+)\s+\d+", out, re.M)
    return float(m.group(1)) if m else None


def cpu_share(cpu_s_per_sample: float, interval_s: float = 1.0) -> dict:
    """CPU per sample here as a share of one Pi Zero 2 W core at a sample every ``interval_s``."""
    mips = seven_zip_single_core_mips()
    if mips is None:
        print(f"  CPU per sample: {cpu_s_per_sample * 1000:.2f} ms here; no 7z to scale it to a Pi Zero 2 W "
              "(apt-get install p7zip-full)")
        return {"cpu_ms_per_sample": cpu_s_per_sample * 1000}
    ratio = mips / PI_ZERO_2W_7ZIP_MIPS
    share = cpu_s_per_sample * ratio / interval_s
    print(f"  CPU per sample at a 1 s interval: {cpu_s_per_sample * 1000:.2f} ms here; this core rates "
          f"{mips:,.0f} MIPS (7z b -mmt1, per 100% of a core) vs a Pi Zero 2 W core's {PI_ZERO_2W_7ZIP_MIPS:.0f}: x{ratio:.1f}, "
          f"so about {share:.1%} of one Pi Zero 2 W core")
    return {"cpu_ms_per_sample": cpu_s_per_sample * 1000, "this_core_7zip_mips": mips,
            "pi_zero_2w_core_ratio": ratio, "pi_zero_2w_core_share": share}
