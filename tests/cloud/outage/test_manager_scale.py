"""The manager's tick does work in proportion to what changed, not to the size of the fleet.

The same five silent meters in a fleet of 2,000 and one of 20,000 (ten areas of 200 and of 2,000
homes): every tick reads the same number of rows, and the registrations are counted per concentrator
once, at the first tick, not per area on every tick."""
from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta

from appliance.clock import ceil_to
from cloud.outage.collector import Timing
from cloud.outage.manager import ManagerConfig, OutageManager
from cloud.outage.model import MeterState, OutageKind, OutageStatus, Reading, StatusEvent
from cloud.outage.storage import open_storage
from cloud.outage.storage.readings import down_candidates_sql
from cloud.outage.topology import FleetSpec, meter_id, registrations

TIMING = Timing(timedelta(minutes=30), timedelta(minutes=2))
AREAS = 10  # the fleet grows by growing its areas: a tick that read whole areas would read 10 times more
SILENT_AREAS = (0, 2, 5, 7, 9)  # one silent home in each of five areas
GASP_AREAS = (2, 7)  # two of them said so themselves: strong evidence, indoor outages
REGISTRATIONS = re.compile(r"FROM registrations\b")


class Counting:
    """Rows a storage returns per tick, and how many of them are registrations."""

    def __init__(self, storage) -> None:
        self.rows: Counter[str] = Counter()
        real = storage._query

        def query(sql, params=None):
            rows = real(sql, params)
            self.rows["all"] += len(rows)
            if REGISTRATIONS.search(str(sql)):
                self.rows["registrations"] += len(rows)
            return rows

        storage._query = query

    def take(self) -> dict[str, int]:
        out = dict(self.rows)
        self.rows.clear()
        return out


def read(storage, meters, seq: int, end) -> None:
    storage.store_readings([Reading(m, seq, end - TIMING.period, end, {"meter_id": m, "seq": seq}) for m in meters], end)


def rows_per_tick(url: str, clock, meters: int) -> tuple[list[dict[str, int]], list[tuple[OutageKind, OutageStatus]]]:
    storage = open_storage(url)
    try:
        size = meters // AREAS
        storage.upsert_registrations(registrations(FleetSpec(meters=meters, area_size=size)))
        everyone = [meter_id(n) for n in range(meters)]
        manager = OutageManager(storage, clock, ManagerConfig(timing=TIMING))
        end = ceil_to(clock.now(), TIMING.period)
        read(storage, everyone, 1, end)
        clock.set(end + TIMING.grace + timedelta(seconds=1))
        manager.tick()  # the first tick loads the roster: one row per concentrator
        counting = Counting(storage)
        silent = {meter_id(a * size + 3) for a in SILENT_AREAS}
        storage.store_statuses([StatusEvent(meter_id(a * size + 3), MeterState.POWER_FAIL, end + timedelta(minutes=5))
                                for a in GASP_AREAS], clock.now())
        end += TIMING.period
        read(storage, [m for m in everyone if m not in silent], 2, end)
        clock.set(end + TIMING.grace + timedelta(seconds=1))
        ticks = []
        for step in (0, 2, 40, 2, 2):  # silence found; again; declared after the delay; settled twice
            clock.advance(step)
            manager.tick()
            ticks.append(counting.take())
        outages = sorted((o.kind, o.status) for o in storage.outages(open_only=True))
        return ticks, outages
    finally:
        storage.close()


def test_a_tick_reads_as_much_for_20000_meters_as_for_2000(storage_url, request, tmp_path, day_clock):
    small_url = (f"sqlite:///{tmp_path / 'small.db'}" if storage_url.startswith("sqlite")
                 else request.getfixturevalue("postgres").create_database())
    start = day_clock.now()
    small, small_outages = rows_per_tick(small_url, day_clock, 2_000)
    day_clock.set(start)
    large, large_outages = rows_per_tick(storage_url, day_clock, 20_000)
    assert large == small
    assert large_outages == small_outages == [(OutageKind.INDOOR, OutageStatus.DECLARED)] * 2
    # the registrations read: the five silent meters' places once, and the e-mail addresses of the two
    # declared homes; an unchanged fleet is not read again
    assert [t.get("registrations", 0) for t in large] == [5, 0, 2, 0, 0]
    assert large[3] == large[4] and large[3]["all"] < large[0]["all"]  # settled: less than judging


def _plan(storage, region: list[str], end) -> str:
    sql = str(down_candidates_sql(len(region)).compile(dialect=storage._engine.dialect))
    with storage.driver_connection() as conn:
        if storage.dialect == "postgresql":
            conn.execute("ANALYZE")
            return " / ".join(row[0] for row in conn.execute("EXPLAIN " + sql, (*region, end, *region, end)))
        return " / ".join(row[-1] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, (*region, end, *region, end)))


def test_the_down_candidates_are_read_through_the_evidence_indexes(storage, day_clock):
    """Schema step 11: both engines read a region's down candidates by index range scans, one per
    prefecture, in the indexes led by the prefecture; neither scans every meter, nor reads a registration."""
    meters = 5_000
    storage.upsert_registrations(registrations(FleetSpec(meters=meters)))
    end = ceil_to(day_clock.now(), TIMING.period)
    read(storage, [meter_id(n) for n in range(meters) if n % 1000], 1, end)  # five silent
    read(storage, [meter_id(n) for n in range(0, meters, 1000)], 1, end - TIMING.period)
    storage.store_statuses([StatusEvent(meter_id(1), MeterState.POWER_FAIL, end + timedelta(minutes=1))], end)
    everywhere = storage.registered_prefectures()
    assert len(everywhere) == 5
    for region in (everywhere, ["広島県"]):
        plan = _plan(storage, region, end.timestamp())
        if storage.dialect == "sqlite":
            assert "INDEX meter_comm_prefecture_last_end (prefecture=? AND last_interval_end<?)" in plan, plan
            assert "INDEX meter_comm_prefecture_down (prefecture=?" in plan, plan
        else:
            assert re.search(r"Index Scan (on|using) meter_comm_prefecture_last_end\b[^/]* / +Index Cond: "
                             r"\(\(prefecture = [^/]* AND \(last_interval_end < ", plan), plan
            assert "meter_comm_prefecture_down" in plan, plan
        assert not re.search(r"Seq Scan|\bSCAN meter_comm\b|registrations", plan), plan
    silent = {meter_id(n) for n in range(0, meters, 1000)} | {meter_id(1)}
    assert {c.meter_id for c in storage.down_candidates(end)} == silent
    hiroshima = storage.registrations(sorted(silent))
    assert {c.meter_id for c in storage.down_candidates(end, ["広島県"])} == {
        m for m, r in hiroshima.items() if r.area.prefecture == "広島県"} != set()
