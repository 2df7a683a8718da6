"""``smartmeter bench appliance``: figures for the meter service, each with its ratio to a bare baseline
measured in the same run on the same broker. It prints; nothing asserts.

* Modbus transactions per sample (goal: 1).
* Resident memory of the headless meter service after one simulated hour at a 1 s interval (goal < 60 MB).
* Outbox drain of 10,000 queued readings for 3 companies, vs a bare paho QoS 1 publisher (goal >= 0.5).
* Sample-to-company latency p50/p99 through the broker, vs a bare publish-to-receive round trip.
* Supply loss to ``power_fail`` on the broker p50/p99 (goal p99 < 100 ms), and the service's CPU per
  sample at a 1 s interval as a share of one Pi Zero 2 W core (:mod:`smartmeter.bench.gasp`).

Every party has its own account on a broker set up as `smartmeter broker init` sets one up; the drain
and the latency run over plain TCP and over mutual TLS, each baseline on the same kind of connection,
and the TLS cost is the drain's drop (goal: at most 20%).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import JST, ManualClock, SystemClock
from appliance.config import parse_config
from cloud.mqtt import connect, disconnect, make_client
from devkit.mosquitto import LocalMosquitto
from drivers.modbus.bridge import ModbusEndpoint, quiet_pymodbus
from drivers.modbus.chip import ModbusMeteringChip
from drivers.modbus.emulator import ChipEmulator
from drivers.modbus.profiles import get_profile

from ..assembly import Meter, build_meter
from . import gasp

CONTRACTS = {"supply": {"company": "A", "data_types": ["time", "power", "energy", "totals"]},
             "data": [{"company": "D1", "data_types": ["time", "energy"]},
                      {"company": "D2", "data_types": ["power", "voltage", "current"]}]}


def _meter(meter_id: str, db: str, mqtt: dict, chip_port: int, clock, retention: str = "7d") -> Meter:
    """The benchmarked meter, assembled from a config like any other: 1 s windows, three companies;
    ``mqtt``: its ``[mqtt]`` section (its own account)."""
    cfg = parse_config({"meter": {"id": meter_id, "measurement_interval": "1s", "retention": retention, "store": db},
                        "chip": {"profile": "sdm120", "tcp": f"127.0.0.1:{chip_port}"},
                        "mqtt": mqtt, "contracts": CONTRACTS})
    return build_meter(cfg, clock)


def _chip(port: int, clock) -> ModbusMeteringChip:
    return ModbusMeteringChip(get_profile("sdm120"), ModbusEndpoint.tcp("127.0.0.1", port, timeout=1.0), clock=clock)


def cmd_bench(args: argparse.Namespace) -> int:
    quiet_pymodbus()
    out: dict[str, object] = {"date": datetime.now(JST).isoformat(timespec="seconds"),
                              "machine": f"{platform.node()} {platform.machine()} {platform.processor() or ''}".strip(),
                              "python": platform.python_version()}
    print(f"smartmeter bench appliance — {out['date']} on {out['machine']}, Python {out['python']}")
    emulator = ChipEmulator(get_profile("sdm120"), SystemClock())
    port = emulator.start_tcp()
    try:
        out.update(bench_transactions(port, args.samples))
        for tls in (False, True):
            link = "tls" if tls else "tcp"
            print(f"  -- over {'mutual TLS' if tls else 'plain TCP'}, every party on its own account --")
            with LocalMosquitto(workdir=Path(tempfile.mkdtemp(prefix="bench-broker-")), tls=tls) as broker:
                if not tls:
                    out.update(bench_memory(broker, port, args.sim_seconds))
                    out.update(gasp.bench_last_gasp(broker, port, args.samples, _pct))
                out.update({f"{k}_{link}": v for k, v in bench_drain(broker, port, args.readings).items()})
                out.update({f"{k}_{link}": v for k, v in bench_latency(broker, port, args.samples).items()})
        cost = 1 - out["drain_readings_per_s_tls"] / out["drain_readings_per_s_tcp"]
        out["tls_drain_cost"] = cost
        print(f"  TLS cost: the outbox drain over mutual TLS runs at {1 - cost:.2f}x its plain TCP rate "
              f"(cost {max(cost, 0):.0%}; goal at most 20%)")
    finally:
        emulator.stop()
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    return 0


def bench_transactions(port: int, samples: int) -> dict:
    chip = _chip(port, SystemClock())
    t0 = time.perf_counter()
    ok = sum(chip.read_sample().ok for _ in range(samples))
    dt = time.perf_counter() - t0
    per = chip.counters.transactions / samples
    chip.close()
    print(f"  Modbus transactions per sample: {per:.2f} (goal 1; {ok}/{samples} samples ok, "
          f"{dt / samples * 1000:.2f} ms per sample over TCP)")
    return {"modbus_transactions_per_sample": per, "modbus_ms_per_sample": dt / samples * 1000}


def bench_memory(broker: LocalMosquitto, port: int, sim_seconds: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "smartmeter.cli", "bench", "appliance-memory-child", "--mqtt-json",
               json.dumps(broker.mqtt_section("meter", "BENCH-MEM")), "--chip-port", str(port), "--sim-seconds", str(sim_seconds),
               "--db", f"{d}/meter.sqlite3"]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if res.returncode != 0:
            print(f"  memory: child failed: {res.stderr[-500:]}")
            return {}
        fig = json.loads(res.stdout.strip().splitlines()[-1])
    print(f"  Resident memory after {sim_seconds} simulated s at a 1 s interval: {fig['rss_mb']:.1f} MB now, "
          f"{fig['peak_rss_mb']:.1f} MB peak (goal < 60 MB; {fig['readings']} readings, {fig['wall_s']:.1f} s wall)")
    return {"service_rss_mb": fig["rss_mb"], "service_peak_rss_mb": fig["peak_rss_mb"],
            **gasp.cpu_share(fig["cpu_s"] / fig["readings"])}


def cmd_memory_child(args: argparse.Namespace) -> int:
    """The headless meter service alone in its process, stepped through simulated time at its tick
    (two steps per 1 s sample, one measuring); its CPU seconds cover the steps and the drain."""
    quiet_pymodbus()
    clock = ManualClock(datetime(2026, 11, 23, 0, 0, tzinfo=JST))
    interval = timedelta(seconds=1)
    meter = _meter("BENCH-MEM", args.db, json.loads(args.mqtt_json), args.chip_port, clock, retention="1d")
    service, uplink = meter.service, meter.uplink
    meter.start()
    t0 = time.perf_counter()
    while not uplink.state().connected and time.perf_counter() - t0 < 10:
        time.sleep(0.05)
    cpu0 = time.process_time()
    for _ in range(args.sim_seconds * 2):
        service.step()
        clock.advance(interval / 2)
    while service.store.outbox_size() and time.perf_counter() - t0 < 300:
        service.step()
        time.sleep(0.01)
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - t0
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    rss, peak = (int(status[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # kB -> MB
    uplink.stop()
    print(json.dumps({"rss_mb": rss, "peak_rss_mb": peak, "readings": len(service.store.readings()), "wall_s": wall,
                      "cpu_s": cpu}))
    return 0


def bench_drain(broker: LocalMosquitto, port: int, readings: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        clock = ManualClock(datetime(2026, 11, 23, 0, 0, tzinfo=JST))
        interval = timedelta(seconds=1)
        meter = _meter("BENCH-DRAIN", f"{d}/meter.sqlite3", broker.mqtt_section("meter", "BENCH-DRAIN"), port, clock,
                       retention="30d")
        service, uplink = meter.service, meter.uplink
        for _ in range(readings + 1):  # broker not connected: everything queues in the outbox
            service.step()
            clock.advance(interval)
        queued = service.store.outbox_size()
        uplink.start()
        while not uplink.state().connected:
            time.sleep(0.01)
        t0 = time.perf_counter()
        while service.store.outbox_size():
            service.pump.pump(clock.now())
            time.sleep(0.001)
        ours = time.perf_counter() - t0
        meter.close()
    bare = _bare_publisher(broker, queued)
    ratio = bare / ours
    print(f"  Outbox drain: {readings} readings for 3 companies = {queued} messages in {ours:.2f} s: "
          f"{readings / ours:,.0f} readings/s, {queued / ours:,.0f} msg/s; bare paho QoS 1 publisher "
          f"{queued / bare:,.0f} msg/s; ratio {ratio:.2f} (goal >= 0.5)")
    return {"drain_readings_per_s": readings / ours, "drain_msgs_per_s": queued / ours,
            "bare_publisher_msgs_per_s": queued / bare, "drain_ratio": ratio}


def _bare_publisher(broker: LocalMosquitto, n: int) -> float:
    """Seconds for a plain paho client to publish ``n`` QoS 1 messages and get every PUBACK."""
    done = threading.Event()
    acked = [0]

    def on_publish(*_):
        acked[0] += 1
        if acked[0] == n:
            done.set()

    account = broker.account("meter", "BENCH-BARE")  # a meter's account, like the drained meter's
    c = make_client(account)
    c.on_publish = on_publish
    c.max_inflight_messages_set(100)
    connect(c, account)
    payload = json.dumps({"meter_id": "BENCH-BARE", "company_code": "A", "seq": 1, "energy_wh": 12.3,
                          "interval_start": "2026-11-23T00:00:00+09:00"}).encode()
    t0 = time.perf_counter()
    for i in range(n):
        c.publish("companies/A/meters/BENCH-BARE/data", payload, qos=1)
    done.wait(300)
    dt = time.perf_counter() - t0
    disconnect(c)
    return dt


def bench_latency(broker: LocalMosquitto, port: int, samples: int) -> dict:
    arrivals: dict[int, float] = {}
    got = threading.Event()
    company = broker.account("company", "A")
    sub = make_client(company)

    def on_message(_c, _u, msg):
        arrivals[json.loads(msg.payload)["seq"]] = time.perf_counter()
        got.set()

    sub.on_message = on_message
    connect(sub, company)
    sub.subscribe("companies/A/meters/+/data", qos=1)
    time.sleep(0.3)
    with tempfile.TemporaryDirectory() as d:
        clock = ManualClock(datetime(2026, 11, 23, 0, 0, tzinfo=JST))
        interval = timedelta(seconds=1)
        meter = _meter("BENCH-LAT", f"{d}/meter.sqlite3", broker.mqtt_section("meter", "BENCH-LAT"), port, clock)
        service, uplink = meter.service, meter.uplink
        meter.start()
        while not uplink.state().connected:
            time.sleep(0.01)
        service.step()  # the first sample only sets the registers' base
        ours = []
        for _ in range(samples):
            clock.advance(interval)
            got.clear()
            t0 = time.perf_counter()
            reading = service.step()  # S807/S808 sample + store, S805/S806 queue + publish
            while reading.seq not in arrivals and time.perf_counter() - t0 < 5:
                got.wait(0.001)
                service.step()  # the pump records acks and publishes the rest
            ours.append(arrivals.get(reading.seq, float("nan")) - t0)
        meter.close()
    echo = broker.account("meter", "BENCH-ECHO")  # the same path as the meter's: a meter account to company A
    pub = make_client(echo)
    connect(pub, echo)
    bare = []
    for i in range(samples):
        got.clear()
        t0 = time.perf_counter()
        pub.publish("companies/A/meters/BENCH-ECHO/data", json.dumps({"seq": -1 - i}).encode(), qos=1)
        got.wait(5)
        bare.append(arrivals.get(-1 - i, float("nan")) - t0)
    disconnect(pub)
    disconnect(sub)
    p50, p99 = _pct(ours, 50), _pct(ours, 99)
    b50, b99 = _pct(bare, 50), _pct(bare, 99)
    print(f"  Sample-to-company latency: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; bare publish-to-receive "
          f"p50 {b50 * 1000:.2f} ms, p99 {b99 * 1000:.2f} ms; ratio p50 {p50 / b50:.1f}x, p99 {p99 / b99:.1f}x "
          f"(ours includes the Modbus read and the durable SQLite commit)")
    return {"latency_p50_ms": p50 * 1000, "latency_p99_ms": p99 * 1000, "bare_p50_ms": b50 * 1000,
            "bare_p99_ms": b99 * 1000, "latency_ratio_p50": p50 / b50, "latency_ratio_p99": p99 / b99}


def _pct(values: list[float], q: int) -> float:
    v = sorted(x for x in values if x == x)
    return statistics.quantiles(v, n=100, method="inclusive")[q - 1] if len(v) > 1 else (v[0] if v else float("nan"))
