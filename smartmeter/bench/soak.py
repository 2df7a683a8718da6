"""``smartmeter bench soak``: the real meter service (``smartmeter appliance run`` in a process of its
own) in real time at a 1 s interval, beside the chip emulator on Modbus TCP, a local Mosquitto and a
company server receiving; its resident memory sampled every 10 s. Prints the curve and the slope
over the last half (kB/min). A flat curve is the goal; nothing asserts it."""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from appliance.clock import JST, SystemClock
from cloud.broker import Party
from cloud.company_server import CompanyServer
from devkit.mosquitto import LocalMosquitto
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def slope_kb_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time, kB per minute."""
    if len(samples) < 3:
        return float("nan")
    ts, ks = [t for t, _ in samples], [k for _, k in samples]
    return statistics.linear_regression(ts, ks).slope * 60


def run_soak(seconds: float, every: float = 10.0, print_fn=print) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    parties = (Party("meter", "SOAK-1"), Party("company", "A"))
    with LocalMosquitto(workdir=work / "broker", parties=parties) as broker:
        emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
        port = emulator.start_tcp()
        company = CompanyServer("A", broker.settings("A"), work / "company.sqlite3").start()
        (work / "meter.toml").write_text(f"""[meter]
id = "SOAK-1"
measurement_interval = "1s"
retention = "1d"
store = "meter.sqlite3"
[chip]
profile = "sdm120"
tcp = "127.0.0.1:{port}"
{broker.mqtt_toml("meter", "SOAK-1")}[contracts.supply]
company = "A"
data_types = ["time", "power", "energy", "totals"]
""")
        meter = subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "appliance", "run", "--config",
                                  str(work / "meter.toml")], stdout=subprocess.DEVNULL,
                                 stderr=open(work / "meter.log", "wb"))
        samples: list[tuple[float, int]] = []
        curve = (work / "rss.csv").open("w")
        print_fn(f"sampling the meter service's RSS into {work / 'rss.csv'}")
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < seconds:
                time.sleep(every)
                if meter.poll() is not None:
                    raise RuntimeError(f"the meter service exited; see {work / 'meter.log'}")
                samples.append((time.monotonic() - t0, rss_kb(meter.pid)))
                curve.write(f"{samples[-1][0]:.0f},{samples[-1][1]}\n")
                curve.flush()
        finally:
            curve.close()
            meter.terminate()
            meter.wait(20)
            company.stop()
            emulator.stop()
    half = [s for s in samples if s[0] >= seconds / 2]
    out = {"date": datetime.now(JST).isoformat(timespec="seconds"), "seconds": seconds,
           "rss_start_mb": samples[0][1] / 1024 if samples else float("nan"),
           "rss_end_mb": samples[-1][1] / 1024 if samples else float("nan"),
           "slope_all_kb_per_min": slope_kb_per_min(samples), "slope_last_half_kb_per_min": slope_kb_per_min(half),
           "readings_received": len(company.data())}
    print_fn(f"soak {seconds:.0f} s at a 1 s interval: RSS {out['rss_start_mb']:.1f} MB after {every:.0f} s, "
             f"{out['rss_end_mb']:.1f} MB at the end; slope {out['slope_all_kb_per_min']:.1f} kB/min overall, "
             f"{out['slope_last_half_kb_per_min']:.1f} kB/min over the last half; "
             f"{out['readings_received']} readings received by the company")
    step = max(1, len(samples) // 12)
    print_fn("  curve (s: MB): " + ", ".join(f"{t:.0f}: {k / 1024:.2f}" for t, k in samples[::step]))
    return out


def cmd_bench(args) -> int:
    run_soak(args.seconds, args.every)
    return 0
