"""``smartmeter bench email``: power loss to e-mail in a large territory during a storm, through the
deployed processes.

The territory (``--meters``, default 1,000,000) is loaded straight into storage, as ``bench manager``
does: areas of 40 homes behind 2 concentrators, every meter read the last closed window but 1%
background silence, and a storm of ``--storm`` areas whose meters all sent a last gasp. Then the real
``smartmeter cloud collector``, ``manager`` (30 s declaration delay, 2 s tick, wall clock) and
``notifier`` processes start on that database and a real Mosquitto with the project's accounts and
ACLs; the storm's outages are declared and their e-mails sent, so the storm is open and settled.

At T0 the ``--area`` customers of one more area (default 10,000, behind a concentrator per 500
homes) lose power: a publisher process sends each meter's last gasp (``power_fail`` on
``meters/{id}/status``, retained, QoS 1, as the meter does). An SMTP sink in its own process records
when each e-mail arrives and to whom. Printed: T0 to each customer's e-mail, p50/p99/max, the
stages (gasps taken in by the collector, outage suspected, declared, e-mails sent), the share of the
declaration delay, and checks that every customer of the area got exactly one e-mail and nobody
else got one. Nothing asserts the timings.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from appliance.clock import SystemClock, floor_to, iso
from cloud.outage.model import Area, OutageKind, Reading
from cloud.outage.storage import Storage, open_storage
from cloud.outage.topology import FleetSpec, area_of, meter_id, registration
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port
from devkit.postgres import TempPostgres
from devkit.process import ChildProcess

from .manager import AREA_SIZE, TIMING, load_fleet

REPO = Path(__file__).resolve().parents[2]  # the handlers run from this tree, not an installed copy
HOMES_PER_CONCENTRATOR = 500
TICK_S = 2  # the manager's default --tick
EMAIL_DOMAIN = "example.jp"


@dataclass(frozen=True)
class Territory:
    """Who is who: the storm's meters and the timed area's, by meter number."""

    spec: FleetSpec  # every meter's personal data; the timed area is its last ``area`` meters
    area: int
    district: Area  # the timed area's
    storm: frozenset[int]

    @property
    def area_first(self) -> int:
        return self.spec.meters - self.area

    def in_area(self, n: int) -> bool:
        return n >= self.area_first


# ----------------------------------------------------------------- the territory, straight into storage
def load_territory(storage: Storage, meters: int, area: int, storm_areas: int, closed_end: datetime) -> Territory:
    """The fleet around the timed area (with its storm and background silence, as ``bench manager``
    loads it), then the timed area itself: one district of ``area`` homes that read the same window."""
    around = FleetSpec(meters - area, area_size=AREA_SIZE, concentrators_per_area=2)
    storm, _ = load_fleet(storage, around, storm_areas, closed_end)
    spec = FleetSpec(meters, area_size=AREA_SIZE, concentrators_per_area=2)
    district = area_of(around.areas)  # a district nobody else lives in
    per = max(2, area // HOMES_PER_CONCENTRATOR)
    first = meters - area
    storage.upsert_registrations(
        replace(registration(spec, n), area=district, concentrator_id=f"CN{around.areas:06d}-{(n - first) * per // area + 1}")
        for n in range(first, meters))
    readings = []
    for n in range(first, meters):
        w_end = closed_end - TIMING.period if n % 100 == 50 else closed_end  # the same 1% background silence
        readings.append(Reading(meter_id(n), 1, w_end - TIMING.period, w_end, "{}"))
    storage.store_readings(readings, closed_end)
    return Territory(spec, area, district, frozenset(int(m[2:]) for m in storm))



# ----------------------------------------------------------------- the processes around the handlers
def _sink(port: int, path: str, ready) -> None:
    """The SMTP server: one line per accepted e-mail, its arrival time and recipient, written at once."""
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # a line per SMTP command otherwise
    with open(path, "a", buffering=1, encoding="utf-8") as out:  # line-buffered: the parent reads as it goes

        class Recorder:
            async def handle_DATA(self, server, session, envelope):
                out.writelines(f"{time.time():.6f}\t{rcpt}\n" for rcpt in envelope.rcpt_tos)
                return "250 OK"

        Controller(Recorder(), hostname="127.0.0.1", port=port).start()
        ready.set()
        while True:
            time.sleep(3600)  # until terminated


def _gasps(account, meters: list[str], ready, go, report) -> None:
    """The timed area's meters, each sending its last gasp as the meter does, as fast as one connection
    can; reports T0 (just before the first) and when the broker had acknowledged the last."""
    from cloud.mqtt import connect, disconnect, make_client

    clock = SystemClock()
    c = make_client(account)
    c.max_inflight_messages_set(1000)
    connect(c, account)
    ready.set()
    go.wait()
    t0 = time.time()
    info = None
    for i, m in enumerate(meters):
        body = json.dumps({"state": "power_fail", "at": iso(clock.now())})
        info = c.publish(f"meters/{m}/status", body, qos=1, retain=True)
        if i % 20_000 == 19_999:
            info.wait_for_publish(600)  # paho's message ids wrap at 65,535
    if info is not None:
        info.wait_for_publish(600)
    report.put((t0, time.time()))
    disconnect(c)


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True


def _metric(port: int, name: str) -> float:
    """One counter from a handler's Prometheus endpoint (summed over its samples)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


class Handlers:
    """``smartmeter cloud collector``, ``manager`` and ``notifier`` x N as their own processes."""

    def __init__(self, workdir: Path, url: str, broker: LocalMosquitto, smtp_port: int, notifiers: int,
                 declaration_delay: str) -> None:
        self.children: list[ChildProcess] = []
        self.collector_metrics = free_port()
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        key = workdir / "link.key"  # made here once: the manager and the notifiers would race to make it
        from cloud.secrets import load_or_create_key

        load_or_create_key(key)
        cli = [sys.executable, "-m", "smartmeter.cli"]
        self._start(cli + ["cloud", "collector", "--db", url, "--metrics", f"127.0.0.1:{self.collector_metrics}",
                           "--mqtt-config", str(broker.party_file("operator", "bench-collector"))],
                    workdir / "collector.log", self.collector_metrics, env)
        api = free_port()
        self._start(cli + ["cloud", "manager", "--db", url, "--declaration-delay", declaration_delay,
                           "--api-listen", f"127.0.0.1:{api}", "--accounts", str(workdir / "operators.toml"),
                           "--secret-file", str(key), "--mqtt-config", str(broker.party_file("operator", "bench-manager"))],
                    workdir / "manager.log", api, env)
        for i in range(notifiers):
            port = free_port()
            self._start(cli + ["cloud", "notifier", "--db", url, "--smtp", f"127.0.0.1:{smtp_port}", "--secret-file",
                               str(key), "--metrics", f"127.0.0.1:{port}"], workdir / f"notifier-{i}.log", port, env)

    def _start(self, argv: list[str], log: Path, port: int, env: dict) -> None:
        child = ChildProcess(argv, log, env=env)
        self.children.append(child)
        child.start(lambda: _listening(port), timeout=120, what=" ".join(argv[3:5]))

    def resident_mb(self) -> list[tuple[str, float]]:
        """Each handler's resident memory now, from /proc."""
        out = []
        for child in self.children:
            status = Path(f"/proc/{child.pid}/status").read_text() if child.running else ""
            kb = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
            out.append((child.log_path.stem, kb / 1024))
        return out

    def gasps_taken_in(self) -> int:
        return int(_metric(self.collector_metrics, "smartmeter_collector_statuses_total"))

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


class Inbox:
    """What the sink has accepted so far: (arrival time, meter number)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mail: list[tuple[float, int]] = []
        self._offset = 0
        self.strangers: list[str] = []  # recipients that are no customer of this territory

    def read(self) -> int:
        with open(self.path, encoding="utf-8") as f:
            f.seek(self._offset)
            chunk = f.read()
        whole = chunk[:chunk.rfind("\n") + 1]  # a line still being written waits for the next read
        self._offset += len(whole.encode())
        for line in whole.splitlines():
            at, rcpt = line.split("\t")
            local, _, domain = rcpt.partition("@")
            if domain != EMAIL_DOMAIN or not local[1:].isdigit():
                self.strangers.append(rcpt)
                continue
            self.mail.append((float(at), int(local[1:])))
        return len(self.mail)

    def wait_for(self, count: int, timeout: float, what: str) -> float:
        """Wait until ``count`` e-mails arrived in all; returns when the last of them did."""
        deadline = time.monotonic() + timeout
        while self.read() < count:
            if time.monotonic() > deadline:
                print(f"  only {len(self.mail):,} of {count:,} e-mails ({what}) within {timeout:.0f} s")
                break
            time.sleep(0.2)
        return max((t for t, _ in self.mail), default=float("nan"))


# ----------------------------------------------------------------- the run
@dataclass(frozen=True)
class Options:
    meters: int = 1_000_000
    area: int = 10_000
    storm: int = 500
    notifiers: int = 3
    declaration_delay: float = 30.0  # seconds, as `smartmeter cloud manager --declaration-delay`
    db: str | None = None  # storage URL; None: a temporary SQLite file; 'postgresql': a temporary cluster


@dataclass
class Outcome:
    """Counts to check, and the figures."""

    area_customers: int
    area_mailed: int  # distinct customers of the area with an e-mail after T0
    area_twice: int  # customers of the area with more than one
    storm_customers: int
    storm_mailed: int
    storm_twice: int
    others_mailed: int  # anyone else, customers of the territory or not
    delays: list[float]  # T0 -> each area customer's first e-mail, sorted

    @property
    def correct(self) -> bool:
        return (self.area_mailed == self.area_customers and self.storm_mailed == self.storm_customers
                and not (self.area_twice or self.storm_twice or self.others_mailed))


def _pct(sorted_values: list[float], p: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, min(len(sorted_values) - 1, -(-len(sorted_values) * p // 100) - 1))]


def _closed_window_lasting(budget_s: float) -> datetime:
    """The newest closed window, once it will stay the newest for ``budget_s``: the territory's readings
    are for it, and a run that saw the next window close would find every meter silent."""
    clock = SystemClock()
    now = clock.now()
    closed = floor_to(now - TIMING.grace, TIMING.period)
    left = (closed + TIMING.period + TIMING.grace - now).total_seconds()
    if left < budget_s:
        print(f"waiting {left:.0f} s for the next window to close, so this run (about {budget_s:.0f} s) does not straddle it")
        time.sleep(left + 1)
        closed = floor_to(clock.now() - TIMING.grace, TIMING.period)
    return closed


def _budget(o: Options) -> float:
    """A generous guess of a run's length on this machine, from its sizes."""
    return 30 + o.meters / 12_000 + 2 * o.declaration_delay + (o.storm * AREA_SIZE + o.area) / 150


def _bare_subscriber(broker: LocalMosquitto):
    """A paho subscriber that only notes when each status message arrives: the broker's part alone."""
    from cloud.mqtt import make_client, start_subscriber

    arrived: list[float] = []
    account = broker.account("operator", "bench-bare")
    c = make_client(account)
    c.on_message = lambda _c, _u, _m: arrived.append(time.time())
    start_subscriber(c, account, [("meters/+/status", 1)])
    return c, arrived


def run(o: Options, workdir: Path) -> Outcome:
    ctx = mp.get_context("fork")
    budget = _budget(o)
    closed = _closed_window_lasting(budget)
    patience = max(budget, 120)  # for any one stage: a busy machine is slow, a broken handler never ends
    pg = sink = broker = handlers = publisher = None
    try:
        pg = TempPostgres().start() if o.db == "postgresql" else None
        url = pg.create_database() if pg else (o.db or f"sqlite:///{workdir / 'outage.db'}")
        smtp_port, sink_file = free_port(), workdir / "sink.tsv"
        sink_file.touch()
        ready = ctx.Event()
        sink = ctx.Process(target=_sink, args=(smtp_port, str(sink_file), ready), daemon=True)
        sink.start()
        ready.wait(30)
        broker = LocalMosquitto(workdir=workdir / "mosquitto").start()
        area_meters = [meter_id(n) for n in range(o.meters - o.area, o.meters)]
        ready, go, report = ctx.Event(), ctx.Event(), ctx.Queue()
        publisher = ctx.Process(target=_gasps, daemon=True,
                                args=(broker.account("simulator", "bench-gasps"), area_meters, ready, go, report))
        publisher.start()
        ready.wait(30)

        storage = open_storage(url)
        t = time.perf_counter()
        territory = load_territory(storage, o.meters, o.area, o.storm, closed)
        print(f"territory: {o.meters:,} meters ({url.split(':')[0]}), areas of {AREA_SIZE} plus one of {o.area:,} behind "
              f"{max(2, o.area // HOMES_PER_CONCENTRATOR)} concentrators; 1% silent for one window; a storm of "
              f"{len(territory.storm):,} homes' last gasps in {o.storm} areas (loaded in {time.perf_counter() - t:.0f} s)")

        t = time.time()
        handlers = Handlers(workdir, url, broker, smtp_port, o.notifiers, f"{o.declaration_delay}s")
        inbox = Inbox(sink_file)
        settled = inbox.wait_for(len(territory.storm), patience, "the storm's")
        print(f"storm: the handlers started, declared the storm and sent its {len(inbox.mail):,} e-mails in {settled - t:.0f} s "
              f"(collector, manager with a {o.declaration_delay:g} s declaration delay, {_notifiers(o.notifiers)})")
        time.sleep(2 * TICK_S + 1)  # a few ticks of the settled storm before the power goes

        bare, bare_arrived = _bare_subscriber(broker)
        load = os.getloadavg()
        go.set()
        t0, published = report.get(timeout=patience)
        taken_in = _wait(lambda: handlers.gasps_taken_in() >= o.area, patience)
        expected = len(territory.storm) + o.area
        last = inbox.wait_for(expected, patience, "the storm's and the area's")
        time.sleep(2 * TICK_S + 1)  # two more ticks and a notifier poll: any repeat would show now
        inbox.read()
        from cloud.mqtt import disconnect

        disconnect(bare)
        memory = handlers.resident_mb()
        # the area outage (the first tick may have seen one gasp and suspected one home's indoor outage)
        outage = next((x for x in storage.outages() if x.area == territory.district and x.kind is OutageKind.AREA), None)
        storage.close()
    finally:
        if handlers:
            handlers.stop()
        if publisher:
            publisher.terminate()
        if sink:
            sink.terminate()
        if broker:
            broker.stop()
        if pg:
            pg.stop()

    outcome = _outcome(territory, inbox, t0)
    d = outcome.delays
    print(f"power loss at T0: {o.area:,} last gasps published in {published - t0:.1f} s over one connection; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if bare_arrived:
        print(f"  a bare subscriber had them all by T0 + {max(bare_arrived) - t0:.1f} s; the collector had taken them "
              f"in by T0 + {taken_in - t0:.1f} s")
    if outage is not None:
        suspected, declared = outage.detected_at.timestamp() - t0, (outage.declared_at.timestamp() - t0
                                                                    if outage.declared_at else float("nan"))
        print(f"  outage suspected at T0 + {suspected:.1f} s, declared at T0 + {declared:.1f} s "
              f"({declared - suspected:.1f} s later), {outage.peak_count:,} homes")
        if d:
            first = min(d)
            print(f"  e-mails: first at T0 + {first:.1f} s, last at T0 + {last - t0:.1f} s: {len(d) / max(last - t0 - first, 1e-9):,.0f} "
                  f"e-mails/s from {_notifiers(o.notifiers)}")
    if d:
        p99 = _pct(d, 99)
        print(f"T0 -> e-mail accepted: p50 {_pct(d, 50):.1f} s, p99 {p99:.1f} s, max {d[-1]:.1f} s; the {o.declaration_delay:g} s "
              f"declaration delay is {o.declaration_delay / p99:.0%} of p99, the rest {p99 - o.declaration_delay:.1f} s. "
              f"Goal p99 < 60 s: {'met' if p99 < 60 else 'NOT met'}")
    print(f"checks: area {outcome.area_mailed:,} of {outcome.area_customers:,} customers e-mailed, {outcome.area_twice} twice; "
          f"storm {outcome.storm_mailed:,} of {outcome.storm_customers:,}, {outcome.storm_twice} twice; "
          f"{outcome.others_mailed} e-mails to anyone else: {'correct' if outcome.correct else 'WRONG'}")
    print("resident memory at the end: " + ", ".join(f"{name} {mb:,.0f} MB" for name, mb in memory))
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return outcome


def _notifiers(n: int) -> str:
    return f"{n} notifier{'s' if n != 1 else ''}"


def _wait(done, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)
    return time.time()


def _outcome(territory: Territory, inbox: Inbox, t0: float) -> Outcome:
    area_first: dict[int, float] = {}
    area_count: dict[int, int] = {}
    storm_count: dict[int, int] = {}
    others = len(inbox.strangers)
    for at, n in inbox.mail:
        if territory.in_area(n) and at >= t0:
            area_count[n] = area_count.get(n, 0) + 1
            area_first[n] = min(area_first.get(n, at), at)
        elif n in territory.storm:
            storm_count[n] = storm_count.get(n, 0) + 1
        else:
            others += 1
    return Outcome(territory.area, len(area_count), sum(c > 1 for c in area_count.values()),
                   len(territory.storm), len(storm_count), sum(c > 1 for c in storm_count.values()), others,
                   sorted(at - t0 for at in area_first.values()))


def main(args) -> int:
    if not 1 <= args.storm <= (args.meters - args.area) // AREA_SIZE:
        raise SystemExit("--storm must be at least 1 and at most the areas around the timed one")
    workdir = Path(tempfile.mkdtemp(prefix="bench-email-"))
    try:
        outcome = run(Options(args.meters, args.area, args.storm, args.notifiers,
                              args.declaration_delay.total_seconds(), args.db), workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)  # a 1,000,000-meter database is a gigabyte
    return 0 if outcome.correct else 1
