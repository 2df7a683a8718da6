"""``smartmeter bench manager``: the outage manager's tick over a large fleet in a storm.

Every meter read the last window except 1% background silence (one missed window: weak evidence,
judged every tick, never an outage on its own) and a storm: ``--storm`` whole areas whose meters
sent their last gasp. The ticks timed: the first (the roster loads, the storm's outages open), the
next (the storm still suspected), the one after the declaration delay (500 outages declared, their
e-mails queued), the steady ticks after it, and one where a hundred homes come back."""
from __future__ import annotations

import logging
import resource
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import JST, ManualClock
from cloud.outage.collector import Timing
from cloud.outage.manager import ManagerConfig, OutageManager
from cloud.outage.model import MeterState, Reading, StatusEvent
from cloud.outage.storage import Storage, open_storage
from cloud.outage.topology import FleetSpec, meter_id, registrations
from devkit.postgres import TempPostgres

TIMING = Timing(timedelta(minutes=30), timedelta(minutes=2))
AREA_SIZE = 40
CHUNK = 50_000


def _load(storage: Storage, spec: FleetSpec, storm_areas: int, end: datetime) -> tuple[list[str], int]:
    """The fleet's registrations and evidence; returns the storm's meters and the background's count."""
    storage.upsert_registrations(registrations(spec))
    stride = max(spec.areas // storm_areas, 1)  # storm areas spread over the territory
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


def _tick(manager: OutageManager, what: str) -> None:
    t0 = time.perf_counter()
    changed = manager.tick()
    print(f"  {what:<44} {time.perf_counter() - t0:7.3f} s  ({len(changed):,} outages changed)")


def bench(url: str, meters: int, storm_areas: int) -> None:
    storage = open_storage(url)
    spec = FleetSpec(meters, area_size=AREA_SIZE, concentrators_per_area=2)
    end = datetime(2026, 11, 23, 10, 0, tzinfo=JST)
    t0 = time.perf_counter()
    storm, background = _load(storage, spec, storm_areas, end)
    print(f"{meters:,} meters in {spec.areas:,} areas: {background:,} silent for one window (1%), a storm of "
          f"{len(storm):,} meters' last gasps in {storm_areas} areas (loaded in {time.perf_counter() - t0:.0f} s)")
    clock = ManualClock(end + TIMING.grace + timedelta(seconds=1))
    manager = OutageManager(storage, clock, ManagerConfig(timing=TIMING))
    _tick(manager, "first tick (roster loads, outages open)")
    clock.advance(2)
    _tick(manager, "next tick (storm still suspected)")
    clock.advance(30)
    _tick(manager, "declaration tick (e-mails queued)")
    for _ in range(3):
        clock.advance(2)
        _tick(manager, "steady tick (nothing changed)")
    back = storm[:100]
    storage.store_readings([Reading(m, 2, end, end + TIMING.period, "{}") for m in back], clock.now())
    clock.advance(2)
    _tick(manager, f"tick after {len(back)} homes came back")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory of this process (fleet loading included): {rss:,.0f} MB")
    storage.close()


def main(args) -> int:
    logging.getLogger("cloud.outage").setLevel(logging.WARNING)  # a storm logs every outage it opens
    workdir = Path(tempfile.mkdtemp(prefix="bench-manager-"))
    pg = TempPostgres().start() if args.db == "postgresql" else None
    try:
        for n in args.meters:
            url = pg.create_database() if pg else (args.db or f"sqlite:///{workdir / f'outage-{n}.db'}")
            bench(url, n, args.storm)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)  # a 3,000,000-meter database is gigabytes
    return 0
