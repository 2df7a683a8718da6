"""``smartmeter bench ingest`` still runs: a few hundred queued readings drained on SQLite, counted
exactly (every reading once, none twice, none refused). Timings are printed, never asserted."""
from __future__ import annotations

from datetime import datetime

from appliance.clock import JST
from cloud.outage.topology import FleetSpec
from smartmeter.bench.ingest import backlog, bench_capacity, bench_scaling, concentrator_batch


def test_a_concentrator_batch_is_the_topologys_share_of_an_area():
    spec = FleetSpec(100)
    b = backlog(spec, datetime(2026, 11, 23, 10, 0, tzinfo=JST), batched=True)
    assert concentrator_batch(spec) == spec.area_size // spec.concentrators_per_area == 20
    assert len(b.messages) == 5 and all(t.startswith("concentrators/CN") for t, _ in b.messages)


def test_the_queued_backlog_is_drained_whole_by_one_and_by_two_collector_processes(tmp_path):
    figures = bench_capacity(f"sqlite:///{tmp_path / 'capacity.db'}", 200, 2, tmp_path)
    assert [f.shape for f in figures] == ["one reading per message", "concentrator batches of 20"]
    for f in figures:
        assert f.check.exact, str(f.check)
        assert (f.collector.stored, f.collector.duplicates, f.collector.refused) == (200, 0, 0)
    [two] = bench_scaling(f"sqlite:///{tmp_path / 'scaling.db'}", 200, 1, tmp_path, [2])
    assert two.check.exact, str(two.check)
    assert two.drain.stored == 200 and two.drain.duplicates == 0 and two.drain.refused == 0
    assert all(n > 0 for n in (t[1] for t in two.drain.totals))  # the broker dealt the backlog to both
