"""``smartmeter bench ingest``: the collector's ingest capacity, drained from a queued backlog.

A live publisher measures whether the collector keeps up with it, not what it can take. Here the
territory already holds ``--stored-windows`` windows of readings for the fleet and its registrations;
each subscriber's persistent session is registered and goes away; the next window's readings for the
whole fleet are published into the broker's queue (real Mosquitto with the accounts and ACLs
``smartmeter broker`` writes; its ``max_queued_messages 0`` already means unlimited, so the whole
window is held); then the subscriber comes back and drains it.

* capacity: one ``smartmeter cloud collector --share-group --persistent`` process against a bare paho
  subscriber that only counts, on the same kind of session and subscription and the same backlog
  (both sessions are registered before it is published, so both queues hold the same messages): one
  reading per message (``meters/{id}/interval``) and in concentrator batches of the topology's size
  (:class:`FleetSpec`'s meters per concentrator, about 20), on each database given;
* scaling: 1, 2, 3 collector processes in one ``$share`` group, each on its own operator account,
  draining the same size of backlog (the broker deals it out among their sessions): readings/s, and
  CPU seconds per 1,000 readings of each collector, of the broker and of the database server;
* memory: the collector's peak resident memory (VmHWM) after draining windows of different fleets.

A collector's rate runs from the moment every process answers on its metrics endpoint (so the
interpreter's start is not counted) to the moment the readings settled (stored or set aside) reach
the backlog; the readings settled before it are left out of both. Afterwards the store
is counted: every reading of the window once, none twice, nothing set aside.
"""
from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import SystemClock, floor_to, iso
from cloud.mqtt import connect, disconnect, make_client, start_subscriber
from cloud.outage.collector import TOPICS
from cloud.outage.model import Reading
from cloud.outage.storage import open_storage
from cloud.outage.storage.database import statement
from cloud.outage.topology import FleetSpec, concentrator_of, meter_id, registrations
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port
from devkit.postgres import TempPostgres

PERIOD = timedelta(minutes=30)
SESSION_S = 3600  # the sessions outlive the time the subscribers are away
SHARE_GROUP = "outage"
BARE_GROUP = "bare"
PUBLISH_WAIT_EVERY = 2_000  # paho walks its queue on each PUBACK, and its message ids wrap at 65535
LOAD_CHUNK = 50_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
WINDOW_KEYS = statement("SELECT meter_id FROM readings WHERE seq = :seq")
TOTALS = re.compile(r"messages (\d+), stored (\d+), duplicates (\d+), refused (\d+).*dead letters (\d+)")


# ----------------------------------------------------------------- the territory and its backlog
def concentrator_batch(spec: FleetSpec) -> int:
    """Readings in one concentrator's batch: the meters a concentrator serves in the topology."""
    return -(-spec.area_size // spec.concentrators_per_area)


def _seq(end: datetime) -> int:
    return int(end.timestamp() // PERIOD.total_seconds())  # one seq per window: a window's readings are told apart


def _reading(n: int, end: datetime) -> dict:
    return {"meter_id": meter_id(n), "seq": _seq(end), "interval_start": iso(end - PERIOD), "interval_end": iso(end),
            "power_w": 500.0, "energy_wh": 250.0}


@dataclass(frozen=True)
class Backlog:
    """One window's readings for the whole fleet, as the fleet publishes them."""

    end: datetime
    readings: int
    messages: list[tuple[str, bytes]]
    shape: str

    @property
    def seq(self) -> int:
        return _seq(self.end)


def backlog(spec: FleetSpec, end: datetime, batched: bool) -> Backlog:
    if not batched:
        msgs = [(f"meters/{meter_id(n)}/interval", json.dumps(_reading(n, end)).encode()) for n in range(spec.meters)]
        return Backlog(end, spec.meters, msgs, "one reading per message")
    msgs = [(f"concentrators/{c}/batch", json.dumps({"readings": [_reading(n, end) for n in meters]}).encode())
            for c, meters in itertools.groupby(range(spec.meters), key=lambda n: concentrator_of(spec, n))]
    return Backlog(end, spec.meters, msgs, f"concentrator batches of {concentrator_batch(spec)}")


class Territory:
    """A store holding the fleet's registrations and ``stored`` windows of readings; hands out the
    later windows, the newest ending at the latest window end before now (every reading in the past)."""

    def __init__(self, url: str, spec: FleetSpec, stored: int, backlogs: int) -> None:
        self.url, self.spec = url, spec
        latest = floor_to(SystemClock().now(), PERIOD)
        self._ends = [latest - PERIOD * k for k in range(stored + backlogs - 1, -1, -1)]
        self.storage = open_storage(url)
        self.storage.upsert_registrations(registrations(spec))
        for end in self._ends[:stored]:
            for i in range(0, spec.meters, LOAD_CHUNK):
                self.storage.store_readings([Reading(meter_id(n), _seq(end), end - PERIOD, end, json.dumps(_reading(n, end)))
                                             for n in range(i, min(i + LOAD_CHUNK, spec.meters))], end)
        self._next = stored
        self.expected_total = spec.meters * stored

    def next_backlog(self, batched: bool) -> Backlog:
        end = self._ends[self._next]
        self._next += 1
        self.expected_total += self.spec.meters
        return backlog(self.spec, end, batched)

    def check(self, b: Backlog) -> StoreCheck:
        """Count the window's readings in the store: every meter once, none twice."""
        meters = [m for (m,) in self.storage._query(WINDOW_KEYS, {"seq": b.seq})]
        return StoreCheck(len(meters), len(set(meters)), b.readings, self.storage.reading_count(), self.expected_total)

    def close(self) -> None:
        self.storage.close()


@dataclass(frozen=True)
class StoreCheck:
    window_rows: int
    window_meters: int
    expected: int
    total_rows: int
    expected_total: int

    @property
    def exact(self) -> bool:
        return self.window_rows == self.window_meters == self.expected and self.total_rows == self.expected_total

    def __str__(self) -> str:
        return (f"{self.window_rows:,} of {self.expected:,} stored for the window, {self.window_rows - self.window_meters} "
                f"twice; {self.total_rows:,} in the store (expected {self.expected_total:,})"
                + ("" if self.exact else "  <-- NOT EXACT"))


# ----------------------------------------------------------------- the broker's side
def publish(broker: LocalMosquitto, b: Backlog) -> float:
    """Publish ``b`` at QoS 1 and wait for every PUBACK: then the broker holds it. Returns seconds."""
    account = broker.account("simulator", "bench-fleet")
    c = make_client(account)
    c.max_inflight_messages_set(1000)
    connect(c, account)
    t0 = time.perf_counter()
    infos = []
    for i, (topic, payload) in enumerate(b.messages):
        infos.append(c.publish(topic, payload, qos=1))
        if i % PUBLISH_WAIT_EVERY == PUBLISH_WAIT_EVERY - 1:
            infos[-1].wait_for_publish(600)
    for info in infos:
        info.wait_for_publish(600)
    took = time.perf_counter() - t0
    disconnect(c)
    return took


def _topics() -> list[tuple[str, int]]:
    """The collector's subscription in a group of the bare subscriber's own: a member of the collectors'
    group would take every other message from their queue instead of a copy of its own."""
    return [(f"$share/{BARE_GROUP}/{t}", 1) for t in TOPICS]


def register_bare(broker: LocalMosquitto, name: str = "bench-bare") -> None:
    """The bare subscriber's persistent session: subscribed, then away."""
    account = broker.account("operator", name)
    c = make_client(account, manual_ack=True)
    start_subscriber(c, account, _topics(), session_expiry_s=SESSION_S)
    disconnect(c)


def _bare_child(account, expected: int, conn) -> None:
    count, first, last = [0], [0.0], [0.0]
    done = threading.Event()

    def on_message(c, u, msg):
        if count[0] == 0:
            first[0] = time.perf_counter()
        count[0] += 1
        if count[0] >= expected:
            last[0] = time.perf_counter()
            done.set()

    cpu0 = time.process_time()
    c = make_client(account)  # acknowledges each message as it arrives
    c.on_message = on_message
    start_subscriber(c, account, _topics(), session_expiry_s=SESSION_S)
    done.wait(600)
    conn.send((count[0], last[0] - first[0], time.process_time() - cpu0))
    disconnect(c)


@dataclass(frozen=True)
class BareDrain:
    messages: int
    seconds: float
    cpu_s: float


def drain_bare(broker: LocalMosquitto, b: Backlog, name: str = "bench-bare") -> BareDrain:
    """The bare subscriber comes back (in its own process) and counts its queue to the end."""
    ctx = mp.get_context("fork")
    parent, child = ctx.Pipe()
    p = ctx.Process(target=_bare_child, args=(broker.account("operator", name), len(b.messages), child), daemon=True)
    p.start()
    count, seconds, cpu = parent.recv()
    p.join(30)
    return BareDrain(count, seconds, cpu)


# ----------------------------------------------------------------- CPU and memory from /proc
def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def tree_cpu_seconds(pid: int) -> float:
    """CPU of ``pid`` and its live children (PostgreSQL: the postmaster and its backends)."""
    total = cpu_seconds(pid)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


def peak_rss_mb(pid: int) -> float:
    m = re.search(r"VmHWM:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(m.group(1)) / 1024 if m else float("nan")


def postmaster_pid(pg: TempPostgres | None) -> int | None:
    return int((pg.workdir / "data" / "postmaster.pid").read_text().split()[0]) if pg else None


# ----------------------------------------------------------------- collector processes
@dataclass
class CollectorProcess:
    """``smartmeter cloud collector`` as deployed: its own operator account, the $share group, persistent."""

    name: str
    proc: subprocess.Popen
    port: int
    out: Path

    @classmethod
    def start(cls, broker: LocalMosquitto, url: str, name: str, workdir: Path) -> CollectorProcess:
        port = free_port()
        out = workdir / f"{name}.log"
        with open(out, "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "cloud", "collector", "--db", url,
                                     "--mqtt-config", str(broker.party_file("operator", name)),
                                     "--share-group", SHARE_GROUP, "--persistent", "--metrics", f"127.0.0.1:{port}"],
                                    stdout=log, stderr=log)
        return cls(name, proc, port, out)

    def settled(self) -> int | None:
        """Readings stored or set aside so far; None until the metrics answer. A duplicate (a message
        redelivered after a reconnect) settles nothing new: the drain is over when every reading is in."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
                text = r.read().decode()
        except OSError:
            if self.proc.poll() is not None:
                raise RuntimeError(f"collector {self.name} exited: {self.out.read_text()[-2000:]}") from None
            return None
        values = dict(re.findall(r"^smartmeter_collector_(stored|dead_letters)_total (\S+)$", text, re.MULTILINE))
        return sum(int(float(v)) for v in values.values())

    def stop(self) -> tuple[int, ...]:
        """SIGTERM (a clean stop: pending readings committed, the session kept); its printed totals:
        messages, stored, duplicates, refused, dead letters."""
        self.proc.terminate()
        self.proc.wait(60)
        found = TOTALS.findall(self.out.read_text())  # the log holds each run of this account: the last
        return tuple(int(g) for g in found[-1]) if found else (0, 0, 0, 0, 0)


def _wait_all_up(procs: list[CollectorProcess], poll: float) -> list[int]:
    deadline = time.monotonic() + 120
    while True:
        seen = [p.settled() for p in procs]
        if all(s is not None for s in seen):
            return seen
        if time.monotonic() > deadline:
            raise TimeoutError("collectors did not start")
        time.sleep(poll)


def register_collectors(broker: LocalMosquitto, url: str, names: list[str], workdir: Path) -> None:
    """Each collector's persistent session in the $share group: started until subscribed, then stopped."""
    procs = [CollectorProcess.start(broker, url, n, workdir) for n in names]
    _wait_all_up(procs, 0.1)
    for p in procs:
        p.stop()


@dataclass
class CollectorDrain:
    readings: int  # settled between the start and the end of the timing
    seconds: float
    cpu_s: list[float]  # each collector's CPU over the timing
    own: list[int]  # each collector's readings over the timing
    totals: list[tuple[int, ...]]  # each collector's printed totals
    peak_mb: list[float]
    broker_cpu_s: float
    db_cpu_s: float | None
    logs: list[Path] = field(default_factory=list)

    def complaints(self, limit: int = 10) -> list[str]:
        """The collectors' warnings and errors: why a reading was not stored."""
        lines = [line for log in self.logs for line in log.read_text(errors="replace").splitlines()
                 if " WARNING " in line or " ERROR " in line or " CRITICAL " in line or line.startswith("messages ")]
        return lines[-limit:]

    @property
    def rate(self) -> float:
        return self.readings / max(self.seconds, 1e-9)

    def cpu_per_1000(self) -> list[float]:
        return [1000 * c / max(n, 1) for c, n in zip(self.cpu_s, self.own)]

    @property
    def stored(self) -> int:
        return sum(t[1] for t in self.totals)

    @property
    def duplicates(self) -> int:
        return sum(t[2] for t in self.totals)

    @property
    def refused(self) -> int:
        return sum(t[3] + t[4] for t in self.totals)


def drain_collectors(broker: LocalMosquitto, url: str, names: list[str], b: Backlog, workdir: Path,
                     db_pid: int | None = None, poll: float = 0.05) -> CollectorDrain:
    """The collectors come back and drain their sessions' queues; timed from all up to all settled."""
    procs = [CollectorProcess.start(broker, url, n, workdir) for n in names]
    try:
        base = _wait_all_up(procs, poll)
        t0 = time.perf_counter()
        cpu0 = [cpu_seconds(p.proc.pid) for p in procs]
        broker0 = cpu_seconds(broker.child.proc.pid)
        db0 = tree_cpu_seconds(db_pid) if db_pid else None
        deadline = time.monotonic() + 1800
        while True:
            now = [p.settled() or 0 for p in procs]
            if sum(now) >= b.readings or time.monotonic() > deadline:
                break
            time.sleep(poll)
        t1 = time.perf_counter()
        cpu1 = [cpu_seconds(p.proc.pid) for p in procs]
        broker_cpu = cpu_seconds(broker.child.proc.pid) - broker0
        db_cpu = tree_cpu_seconds(db_pid) - db0 if db_pid else None
        peak = [peak_rss_mb(p.proc.pid) for p in procs]
    finally:
        totals = [p.stop() for p in procs]
    return CollectorDrain(sum(now) - sum(base), t1 - t0, [b - a for a, b in zip(cpu0, cpu1)],
                          [b - a for a, b in zip(base, now)], totals, peak, broker_cpu, db_cpu, [p.out for p in procs])


# ----------------------------------------------------------------- the figures
def _explain(check: StoreCheck, drain: CollectorDrain) -> None:
    if not check.exact:
        print("    the collectors said:\n      " + "\n      ".join(drain.complaints()))


def _run_dir(workdir: Path) -> Path:
    """A fresh broker (and its sessions) and fresh collector logs for each drain."""
    return Path(tempfile.mkdtemp(prefix="run-", dir=workdir))


def _load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class CapacityFigure:
    shape: str
    bare_rate: float
    collector: CollectorDrain
    check: StoreCheck

    @property
    def ratio(self) -> float:
        return self.collector.rate / self.bare_rate


def bench_capacity(url: str, meters: int, stored_windows: int, workdir: Path,
                   shapes: tuple[bool, ...] = (False, True), db_pid: int | None = None) -> list[CapacityFigure]:
    """One collector process vs the bare subscriber, each shape from its own queued window."""
    spec = FleetSpec(meters)
    t0 = time.perf_counter()
    territory = Territory(url, spec, stored_windows, len(shapes))
    print(f"  territory: {meters:,} meters registered, {stored_windows} windows ({meters * stored_windows:,} readings) "
          f"stored first ({time.perf_counter() - t0:.0f} s)")
    out = []
    try:
        for i, batched in enumerate(shapes):
            b = territory.next_backlog(batched)
            run = _run_dir(workdir)
            with LocalMosquitto(workdir=run / "mosquitto") as broker:
                register_bare(broker)
                register_collectors(broker, url, ["bench-collector-0"], run)
                took = publish(broker, b)
                bare = drain_bare(broker, b)
                col = drain_collectors(broker, url, ["bench-collector-0"], b, run, db_pid)
            bare_rate = bare.messages * b.readings / len(b.messages) / max(bare.seconds, 1e-9)
            fig = CapacityFigure(b.shape, bare_rate, col, territory.check(b))
            out.append(fig)
            _explain(fig.check, col)
            print(f"  {b.shape}: {b.readings:,} readings in {len(b.messages):,} messages queued ({took:.0f} s to publish); "
                  f"{_load()}")
            print(f"    bare subscriber {bare_rate:,.0f} readings/s ({1000 * bare.cpu_s / b.readings:.3f} CPU s per 1,000); "
                  f"collector {col.rate:,.0f} readings/s ({col.cpu_per_1000()[0]:.3f} CPU s per 1,000, broker "
                  f"{1000 * col.broker_cpu_s / max(col.readings, 1):.3f}"
                  + (f", PostgreSQL {1000 * col.db_cpu_s / max(col.readings, 1):.3f}" if col.db_cpu_s is not None else "")
                  + f"); ratio {fig.ratio:.2f} (goal 0.8)")
            print(f"    {fig.check}; collector: stored {col.stored:,}, duplicates {col.duplicates:,}, "
                  f"refused {col.refused:,}; peak resident memory {col.peak_mb[0]:,.0f} MB")
    finally:
        territory.close()
    return out


@dataclass
class ScalingFigure:
    collectors: int
    drain: CollectorDrain
    check: StoreCheck


def bench_scaling(url: str, meters: int, stored_windows: int, workdir: Path, counts: list[int],
                  db_pid: int | None = None) -> list[ScalingFigure]:
    """1, 2, 3 ... collector processes in one $share group draining the same size of backlog (batched)."""
    spec = FleetSpec(meters)
    territory = Territory(url, spec, stored_windows, len(counts))
    out = []
    try:
        for n in counts:
            b = territory.next_backlog(batched=True)
            names = [f"bench-scale{n}-{i}" for i in range(n)]
            run = _run_dir(workdir)
            with LocalMosquitto(workdir=run / "mosquitto") as broker:
                register_collectors(broker, url, names, run)
                publish(broker, b)
                d = drain_collectors(broker, url, names, b, run, db_pid)
            fig = ScalingFigure(n, d, territory.check(b))
            out.append(fig)
            per = d.cpu_per_1000()
            parties = sum(d.cpu_s) + d.broker_cpu_s + (d.db_cpu_s or 0)
            print(f"  {n} collector{'s' if n > 1 else ''}: {d.rate:,.0f} readings/s over {d.seconds:.1f} s; CPU s per "
                  f"1,000 readings: collectors {', '.join(f'{c:.3f}' for c in per)} (shares "
                  f"{', '.join(f'{x:,}' for x in d.own)}), broker {1000 * d.broker_cpu_s / max(d.readings, 1):.3f}"
                  + (f", PostgreSQL {1000 * d.db_cpu_s / max(d.readings, 1):.3f}" if d.db_cpu_s is not None else "")
                  + f"; all parties {parties / max(d.seconds, 1e-9):.2f} cores busy, "
                  f"{d.readings / max(parties, 1e-9):,.0f} readings per CPU second; {_load()}")
            print(f"    {fig.check}; collectors: stored {d.stored:,}, duplicates {d.duplicates:,}, refused {d.refused:,}")
            _explain(fig.check, d)
    finally:
        territory.close()
    return out


def bench_memory(url_for, sizes: list[int], workdir: Path) -> list[float]:
    """The collector's peak resident memory after draining one batched window of each fleet size."""
    peaks = []
    for meters in sizes:
        url = url_for(meters)
        territory = Territory(url, FleetSpec(meters), 1, 1)
        try:
            b = territory.next_backlog(batched=True)
            run = _run_dir(workdir)
            with LocalMosquitto(workdir=run / "mosquitto") as broker:
                register_collectors(broker, url, ["bench-mem"], run)
                publish(broker, b)
                d = drain_collectors(broker, url, ["bench-mem"], b, run)
            peaks.append(d.peak_mb[0])
            check = territory.check(b)
            print(f"  {meters:,}-meter window: collector peak resident memory {d.peak_mb[0]:,.0f} MB (goal under 300 MB "
                  f"per million meters), {d.rate:,.0f} readings/s; {check}; collector: stored {d.stored:,}, "
                  f"duplicates {d.duplicates:,}, refused {d.refused:,}; {_load()}")
            _explain(check, d)
        finally:
            territory.close()
    if len(sizes) > 1:
        growth = (peaks[-1] - peaks[0]) / ((sizes[-1] - sizes[0]) / 1e6)
        print(f"  growth with the fleet: {growth:,.0f} MB per million meters")
    return peaks


def main(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    pg = TempPostgres().start() if "postgresql" in args.db or args.collectors or args.memory_meters else None
    spec = FleetSpec(args.meters)
    print(f"ingest from a queued backlog: {args.meters:,} meters, {concentrator_batch(spec)} per concentrator, "
          f"QoS 1, persistent sessions in $share/{SHARE_GROUP}; {os.cpu_count()} cores; {_load()}")
    try:
        for db in args.db:
            url = pg.create_database() if db == "postgresql" else f"sqlite:///{workdir / 'capacity.db'}"
            print(f"capacity on {db}:")
            bench_capacity(url, args.meters, args.stored_windows, workdir, db_pid=postmaster_pid(pg if db == "postgresql" else None))
        if args.collectors:
            print(f"scaling on postgresql, concentrator batches of {concentrator_batch(spec)}:")
            bench_scaling(pg.create_database(), args.meters, args.stored_windows, workdir, args.collectors,
                          db_pid=postmaster_pid(pg))
        if args.memory_meters:
            print("collector memory on postgresql:")
            bench_memory(lambda _: pg.create_database(), args.memory_meters, workdir)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
