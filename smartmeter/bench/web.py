"""``smartmeter bench web``: the outage web pages under load: a store with N registrations and M open
outages, the app served by uvicorn on this machine. Prints, per page, the server time p50/p99 (goal
p99 under 200 ms) against a bare Starlette page of the same size on the same server (the ratio is
what the page's own work costs), the page weight with its style sheet and script (goal under
200 kB), and the time from a declared outage to the open page in Chromium showing it. Nothing
asserts them; docs/benchmarks.md keeps the runs."""
from __future__ import annotations

import random
import statistics
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import requests

from appliance.clock import JST, ManualClock

SAMPLES = 40


def _store(url: str, registrations: int, outages: int, clock):
    from cloud.outage.model import Outage, OutageKind, OutageStatus
    from cloud.outage.storage import open_storage
    from cloud.outage.topology import FleetSpec, area_of
    from cloud.outage.topology import registrations as fleet

    storage = open_storage(url)
    spec = FleetSpec(registrations, 40, 2)
    t0 = time.perf_counter()
    storage.upsert_registrations(fleet(spec))
    rng = random.Random(7)
    now = clock.now()
    with storage.transaction():
        for i in range(outages):
            indoor = i % 10 == 9
            homes = 1 if indoor else rng.randint(1, 40)
            started = now - timedelta(minutes=rng.randint(1, 600))
            storage.save_outage(Outage(None, OutageKind.INDOOR if indoor else OutageKind.AREA, OutageStatus.DECLARED,
                                       area_of(i % spec.areas), started_at=started, detected_at=started,
                                       declared_at=started, peak_count=homes, current_count=homes))
    print(f"  store: {registrations:,} registrations, {outages:,} open outages ({time.perf_counter() - t0:.1f} s to load)")
    return storage


def _serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def _timed(session: requests.Session, url: str, n: int = SAMPLES) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, timeout=30)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        size = len(r.content)
    return times, size


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main(args) -> int:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from cloud.accounts import Accounts
    from cloud.outage.manager import OutageManager
    from cloud.web.app import create_app
    from devkit.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    clock = ManualClock(datetime(2026, 11, 23, 18, 0, tzinfo=JST))
    print(f"smartmeter bench web — {datetime.now(JST).isoformat(timespec='seconds')}")
    storage = _store(f"sqlite:///{work / 'outage.db'}", args.registrations, args.outages, clock)
    accounts = Accounts(work / "operators.json")
    accounts.add("bench", "operator", "bench-password-1")
    manager = OutageManager(storage, clock)
    app = create_app(storage, clock, key=b"bench-key-" * 4, accounts=accounts, manager=manager)
    port = free_port()
    server = _serve(app, port)
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.post(base + "/ops/login", data={"name": "bench", "password": "bench-password-1", "next": "/ops/"},
                 allow_redirects=False, timeout=30).raise_for_status()
    some = storage.outages(True)[0]
    pages = {"public lookup /": "/", "public prefecture page": f"/area/{some.area.prefecture}",
             "outage list /ops/ (newest first)": "/ops/", "outage list sorted by homes, page 50": "/ops/?sort=homes&page=50",
             "outage list filtered by area": f"/ops/?area={some.area.city}", "one outage /ops/outages/ID": f"/ops/outages/{some.id}",
             "address search /ops/search, page 20": f"/ops/search?q={some.area.city}&page=20",
             "list by address /ops/by-address": "/ops/by-address", "customer (Fig. 10) /ops/customers/ID":
             "/ops/customers/SM0000001"}
    static = sum(len(session.get(base + p, timeout=30).content) for p in ("/static/site.css", "/static/live.js"))
    figures = {}
    for name, path in pages.items():
        times, size = _timed(session, base + path)
        figures[name] = (times, size)
    server.should_exit = True
    # the bare baseline: the same server, a page of the same size that does no work
    bare_port = free_port()
    largest = max(size for _, size in figures.values())
    body = "<!doctype html><p>" + "x" * largest
    bare = _serve(Starlette(routes=[Route("/", lambda r: HTMLResponse(body))]), bare_port)
    bare_times, _ = _timed(requests.Session(), f"http://127.0.0.1:{bare_port}/")
    bare.should_exit = True
    b50 = statistics.median(bare_times)
    print(f"  bare Starlette page of {largest / 1024:.0f} kB: p50 {b50 * 1000:.1f} ms, p99 {_pct(bare_times, 99) * 1000:.1f} ms")
    for name, (times, size) in figures.items():
        p50, p99 = statistics.median(times), _pct(times, 99)
        print(f"  {name}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms (goal p99 < 200 ms), "
              f"{p50 / b50:.1f}x the bare page; weight {(size + static) / 1024:.0f} kB with CSS and script (goal < 200 kB)")
    if not args.no_browser:
        _live_update(storage, manager, clock)
    return 0


def _live_update(storage, manager, clock) -> None:
    """Declared outage -> the open public page shows it, in Chromium (default 2 s polling of the store)."""
    import shutil

    from playwright.sync_api import sync_playwright

    from cloud.accounts import Accounts
    from cloud.outage.model import DaEvent
    from cloud.outage.topology import area_of
    from cloud.web.app import create_app
    from devkit.ports import free_port

    port = free_port()
    server = _serve(create_app(storage, clock, key=b"bench-key-" * 4, accounts=Accounts(Path("/nonexistent")),
                               manager=manager), port)
    delays = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-background-networking"])
        page = browser.new_page()
        for i in range(5):
            area = area_of(100_000 + i)  # a prefecture/city pair with no outage yet
            page.goto(f"http://127.0.0.1:{port}/area/{area.prefecture}")
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            manager.report_da(DaEvent(area, "outage", clock.now(), "bench"))
            page.wait_for_selector(f"tbody tr:has-text('{area.district}')", timeout=30_000)
            delays.append(time.perf_counter() - t0)
        browser.close()
    server.should_exit = True
    print(f"  declared outage -> open page updated: median {statistics.median(delays):.1f} s, worst {max(delays):.1f} s "
          f"(the page is told within one store poll, 2 s, then refetches its table)")
