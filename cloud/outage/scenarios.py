"""Scenarios for the fleet simulator: what happens to the grid, and when, relative to the run's start.

Each scenario is a list of timed steps; the runner interleaves them with the windows' reads."""
from __future__ import annotations

import json
import random
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from appliance.clock import ceil_to, iso

from .fleet import Fleet


@dataclass(order=True)
class Step:
    at: timedelta
    text: str = field(compare=False)
    action: Callable[[], None] = field(compare=False)


@dataclass
class ScenarioOptions:
    da_feed: bool = False  # also publish distribution automation's view on grid/da/events
    api_url: str | None = None  # where to announce a planned outage (the manager's API) ...
    api_authorization: str | None = None  # ... with an operator's credentials (an Authorization header)
    gasp_share: float = 0.95  # share of last gasps that reach the broker


def _outage(fleet: Fleet, opts: ScenarioOptions, area_index: int, off_at: timedelta, on_at: timedelta,
            meters: list[int] | None = None, label: str = "area outage") -> list[Step]:
    meters = meters if meters is not None else fleet.meters_of_area(area_index)
    area = fleet.area(area_index)

    def off():
        fleet.power_fail(meters, opts.gasp_share)
        if opts.da_feed and len(meters) > 1:
            fleet.da_event(area, "outage")

    def on():
        if opts.da_feed and len(meters) > 1:
            fleet.da_event(area, "restored")
        fleet.power_restore(meters)

    return [Step(off_at, f"{label}: {area.label()} ({len(meters)} homes) loses power", off),
            Step(on_at, f"{label}: {area.label()} restored", on)]


def build(name: str, fleet: Fleet, period: timedelta, opts: ScenarioOptions, seed: int = 1) -> list[Step]:
    p = period
    areas = fleet.spec.areas
    if name == "none":
        return []
    if name == "area-outage":
        return _outage(fleet, opts, 0, p / 2, p * 2.5)
    if name == "restoration":
        meters = fleet.meters_of_area(0)
        half = len(meters) // 2
        return _outage(fleet, opts, 0, p / 2, p * 1.5, meters[:half], "restoration, first half") + \
            _outage(fleet, opts, 0, p / 2 + timedelta(seconds=1), p * 2.5, meters[half:], "restoration, second half")
    if name == "breaker":
        return _outage(fleet, opts, min(1, areas - 1), p / 2, p * 2.5, [fleet.meters_of_area(min(1, areas - 1))[0]],
                       "home breaker trip")
    if name == "comm-fault":
        conc = f"CN{min(2, areas - 1):06d}-1"
        return [Step(p / 5, f"concentrator {conc} stops forwarding", lambda: fleet.concentrator_fault(conc, True)),
                Step(p * 3.2, f"concentrator {conc} is back", lambda: fleet.concentrator_fault(conc, False))]
    if name == "blink":
        return _outage(fleet, opts, 0, p / 2, p / 2 + timedelta(seconds=5), label="blink")
    if name == "storm":
        rng = random.Random(seed)
        hit = rng.sample(range(areas), max(2, areas // 10)) if areas >= 2 else [0]
        steps: list[Step] = []
        for a in hit:
            meters = fleet.meters_of_area(a)
            share = rng.uniform(0.5, 1.0)
            down = meters[: max(2, int(len(meters) * share))]
            off = p * rng.uniform(0.3, 1.5)
            steps += _outage(fleet, opts, a, off, off + p * rng.uniform(1.0, 2.0), down, "storm")
        return steps
    if name == "planned":
        a = min(3, areas - 1)
        steps = _outage(fleet, opts, a, p / 2, p * 1.5, label="planned work")
        if opts.api_url:
            def announce():
                start = fleet.clock.now() + p / 2
                body = {"area": fleet.area(a).key, "start": iso(start), "end": iso(start + p), "reason": "construction"}
                req = urllib.request.Request(f"{opts.api_url}/planned", json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      **({"Authorization": opts.api_authorization}
                                                         if opts.api_authorization else {})})
                urllib.request.urlopen(req, timeout=10).close()
            steps.insert(0, Step(timedelta(0), f"planned outage announced for {fleet.area(a).label()}", announce))
        return steps
    raise ValueError(f"unknown scenario {name!r}")


SCENARIOS = ("none", "area-outage", "breaker", "comm-fault", "blink", "storm", "planned", "restoration")


def run(fleet: Fleet, steps: list[Step], windows: int, spread_s: float, progress=None) -> None:
    """Windows at their ends, scenario steps at their times, in the fleet's clock."""
    clock = fleet.clock
    start = clock.now()
    first_end = ceil_to(start, fleet.period)
    ends = [first_end + i * fleet.period for i in range(windows)]
    agenda = sorted([(start + s.at, 1, s) for s in steps] + [(e, 0, e) for e in ends], key=lambda x: (x[0], x[1]))
    for when, kind, item in agenda:
        wait = (when - clock.now()).total_seconds()
        if wait > 0:
            clock.sleep(wait)
        if kind == 0:
            fleet.read_window(item, spread_s, progress)
        else:
            item.action()
            fleet.note(item.text)
