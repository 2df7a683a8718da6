"""``smartmeter bench manager``: the outage manager's tick over a large fleet in a storm.

Every meter read the last window except 1% background silence (one missed window: weak evidence,
judged every tick, never an outage on its own) and a storm: ``--storm`` whole areas whose meters
sent their last gasp. The ticks timed: the first (the roster loads, the storm's outages open), the
next (the storm still suspected), the one after the declaration delay (500 outages declared, their
e-mails queued), the steady ticks after it, and one where a hundred homes come back.

Each manager runs in a process of its own that holds nothing else, so its resident memory is the
manager's (the interpreter's share is printed beside it). With ``--regions N`` the fleet's
prefectures are split into N regions and each region's manager is timed on its own, after the whole
territory's manager on a copy of the same database: the ratio of the two is measured in one run, beside
each region's share of the down candidates (its tick should shrink with that share)."""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import JST, ManualClock
from cloud.outage.collector import Timing
from cloud.outage.manager import ManagerConfig, OutageManager
from cloud.outage.model import MeterState, Reading, StatusEvent
from cloud.outage.regions import Region
from cloud.outage.storage import Storage, open_storage
from cloud.outage.topology import CITIES, PREFECTURES, FleetSpec, area_of, meter_id, registrations
from devkit.postgres import TempPostgres

TIMING = Timing(timedelta(minutes=30), timedelta(minutes=2))
AREA_SIZE = 40
CHUNK = 50_000
STEADY = 3
END = datetime(2026, 11, 23, 10, 0, tzinfo=JST)


def load_fleet(storage: Storage, spec: FleetSpec, storm_areas: int, end: datetime) -> tuple[list[str], int]:
    """The fleet's registrations and evidence; returns the storm's meters and the background's count."""
    storage.upsert_registrations(registrations(spec))
    stride = max(spec.areas // storm_areas, 1)  # storm areas spread over the territory
    while stride > 1 and math.gcd(stride, len(CITIES)) != 1:
        stride -= 1  # areas cycle through the cities: a stride sharing a factor would hit a few cities only
    storm = [meter_id(m) for a in range(0, spec.areas, stride)[:storm_areas]
             for m in range(a * spec.area_size, min((a + 1) * spec.area_size, spec.meters))]
    background = 0
    for i in range(0, spec.meters, CHUNK):
        batch = []
        for m in range(i, min(i + CHUNK, spec.meters)):
            silent = m % 100 == 50  # 1% missed this window
            background += silent
            w_end = end - TIMING.period if silent else end
            batch.append(Reading(meter_id(m), 1, w_end - TIMING.period, w_end, "{}"))
        storage.store_readings(batch, end)
    storage.store_statuses([StatusEvent(m, MeterState.POWER_FAIL, end + timedelta(minutes=1)) for m in storm], end)
    return storm, background


def split(n: int) -> list[Region]:
    """The bench fleet's prefectures in ``n`` regions of neighbouring prefectures (as listed)."""
    names = list(PREFECTURES)
    if not 1 <= n <= len(names):
        raise SystemExit(f"--regions: 1 to {len(names)} (the bench fleet's prefectures)")
    size, extra = divmod(len(names), n)
    out, start = [], 0
    for i in range(n):
        stop = start + size + (i < extra)
        out.append(Region(f"region-{i + 1}", tuple(names[start:stop])))
        start = stop
    return out


@dataclass(frozen=True)
class Run:
    """What one manager process did: its ticks in seconds, its memory in MB."""

    name: str
    ticks: list[tuple[str, float, int]]
    baseline_mb: float  # after imports and opening the database, before the manager
    peak_mb: float
    candidates: int  # the down candidates its steady tick reads (its region's only)

    @property
    def steady(self) -> list[float]:
        return [t for what, t, _ in self.ticks if what.startswith("steady")]


def _memory_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (its peak) of this process's own memory: unlike ``ru_maxrss`` the
    peak does not carry over the parent's from before the new interpreter started."""
    with open("/proc/self/status", encoding="ascii") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(f"{field}:")) / 1024


def _manager_process(url: str, region: Region | None, back: list[str], out) -> None:
    """In a process of its own: one manager's ticks through the storm."""
    logging.getLogger("cloud.outage").setLevel(logging.WARNING)  # a storm logs every outage it opens
    storage = open_storage(url)
    baseline = _memory_mb("VmRSS")
    clock = ManualClock(END + TIMING.grace + timedelta(seconds=1))
    manager = OutageManager(storage, clock, ManagerConfig(timing=TIMING), region=region)
    ticks: list[tuple[str, float, int]] = []

    def tick(what: str) -> None:
        t0 = time.perf_counter()
        changed = manager.tick()
        ticks.append((what, time.perf_counter() - t0, len(changed)))

    tick("first tick (roster loads, outages open)")
    clock.advance(2)
    tick("next tick (storm still suspected)")
    clock.advance(30)
    tick("declaration tick (e-mails queued)")
    for _ in range(STEADY):
        clock.advance(2)
        tick("steady tick (nothing changed)")
    candidates = len(storage.down_candidate_rows(manager.closed_window(clock.now()), manager.roster.prefectures))
    storage.store_readings([Reading(m, 2, END, END + TIMING.period, "{}") for m in back], clock.now())
    clock.advance(2)
    tick(f"tick after {len(back)} homes came back")
    storage.close()
    out.put(Run(region.name if region else "whole territory", ticks, baseline, _memory_mb("VmHWM"), candidates))


def _run(url: str, region: Region | None, storm: list[str]) -> Run:
    ours = [m for m in storm if region is None or region.holds(area_of(int(m[2:]) // AREA_SIZE))]
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the fleet loading in it
    out = ctx.Queue()
    p = ctx.Process(target=_manager_process, args=(url, region, ours[:100], out))
    p.start()
    run = out.get()
    p.join()
    return run


def _print(run: Run, meters: int) -> None:
    print(f"  {run.name} ({run.candidates:,} down candidates read per tick):")
    for what, t, n in run.ticks:
        print(f"    {what:<44} {t:7.3f} s  ({n:,} outages changed)")
    own = run.peak_mb - run.baseline_mb
    print(f"    peak resident memory {run.peak_mb:,.0f} MB ({run.baseline_mb:,.0f} MB before the manager: "
          f"{own:,.0f} MB the manager's, {run.peak_mb / (meters / 1e6):,.0f} MB per million meters in all)")


def _copy(url: str, pg: TempPostgres | None) -> str:
    """A copy of the loaded database, for a second manager to judge from the same start."""
    if pg is None:
        if not url.startswith("sqlite:///"):
            raise SystemExit("--regions with a PostgreSQL database: give --db postgresql (a temporary cluster)")
        path = Path(url.removeprefix("sqlite:///"))
        copy = path.with_name(f"{path.stem}-copy{path.suffix}")
        shutil.copyfile(path, copy)  # closed: the WAL is checkpointed into the file
        return f"sqlite:///{copy}"
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}_copy" TEMPLATE "{name}"')
    return pg.url(f"{name}_copy")


def bench(url: str, meters: int, storm_areas: int, regions: int, pg: TempPostgres | None) -> None:
    storage = open_storage(url)
    spec = FleetSpec(meters, area_size=AREA_SIZE, concentrators_per_area=2)
    t0 = time.perf_counter()
    storm, background = load_fleet(storage, spec, storm_areas, END)
    storage.close()
    print(f"{meters:,} meters in {spec.areas:,} areas: {background:,} silent for one window (1%), a storm of "
          f"{len(storm):,} meters' last gasps in {storm_areas} areas (loaded in {time.perf_counter() - t0:.0f} s); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    whole = _run(_copy(url, pg) if regions > 1 else url, None, storm)
    _print(whole, meters)
    if regions == 1:
        return
    runs = [_run(url, r, storm) for r in split(regions)]
    for region, run in zip(split(regions), runs, strict=True):
        print(f"  {run.name} = {', '.join(region.prefectures)}")
        _print(run, meters)
    slowest = max(max(r.steady) for r in runs)
    print(f"  steady tick: the slowest region's {slowest:.3f} s against the whole territory's {max(whole.steady):.3f} s "
          f"(ratio {slowest / max(whole.steady):.2f}); load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    whole_tick = statistics.median(whole.steady)
    for run in runs:  # a region's tick should shrink with its share of the candidates, not of the fleet
        print(f"  {run.name}: {run.candidates / whole.candidates:.0%} of the candidates, median steady tick "
              f"{statistics.median(run.steady) / whole_tick:.2f} of the whole territory's")


def main(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-manager-"))
    pg = TempPostgres().start() if args.db == "postgresql" else None
    try:
        for n in args.meters:
            url = pg.create_database() if pg else (args.db or f"sqlite:///{workdir / f'outage-{n}.db'}")
            bench(url, n, args.storm, args.regions, pg)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # a 3,000,000-meter database is gigabytes
    return 0
