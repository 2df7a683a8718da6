"""``smartmeter bench web``: the outage web pages under load: a store with N registrations and M open
outages, the app served by uvicorn on this machine. Prints, per page, the server time p50/p99 (goal
p99 under 200 ms) against a bare Starlette page of the same size on the same server (the ratio is
what the page's own work costs), the page weight with everything it loads (goal under 200 kB; the
map's SVG is inline), and the time from a declared outage to the open pages in Chromium showing it
(:mod:`.web_live`). Nothing asserts them; docs/benchmarks.md keeps the runs."""
from __future__ import annotations

import gzip
import random
import re
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import requests

from appliance.clock import JST, ManualClock

KEY = b"bench-key-" * 4
OPERATOR = ("bench", "bench-password-1")
PLANNED_EVERY = 25  # one open outage in 25 is planned work (the planned map), one in 10 a home's breaker
INDOOR_EVERY = 10
# what a page makes the browser load besides itself: style sheets, scripts, images
LOADS = re.compile(r"<(?:link[^>]*\bhref|script[^>]*\bsrc|img[^>]*\bsrc)=\"(/[^\"]+)\"")


@dataclass(frozen=True)
class Fleet:
    """The store the pages read, and what the bench needs to know of it."""

    storage: object
    spec: object
    sample_area: object  # an area with open outages (its customers are searched)
    customer: object  # a registration in that area, with an outage reaching them


def build_store(url: str, registrations: int, outages: int, clock) -> Fleet:
    """``registrations`` from the fleet generator (bulk upsert), then ``outages`` open ones spread over
    the areas, each area outage with its homes as members (the Fig. 10 screen and the search read them)."""
    from cloud.outage.model import Outage, OutageKind, OutageStatus
    from cloud.outage.storage import open_storage
    from cloud.outage.topology import FleetSpec, area_meters, area_of, meter_id
    from cloud.outage.topology import registrations as fleet

    storage = open_storage(url)
    spec = FleetSpec(registrations, 40, 2)
    t0 = time.perf_counter()
    storage.upsert_registrations(fleet(spec))
    t1 = time.perf_counter()
    rng = random.Random(7)
    now = clock.now()
    with storage.transaction():
        for i in range(outages):
            area_index = i % spec.areas
            area = area_of(area_index)
            if i % PLANNED_EVERY == PLANNED_EVERY - 1:
                start = now + timedelta(hours=rng.randint(-2, 48))  # some under way, most announced
                end = start + timedelta(hours=4)
                homes = len(area_meters(spec, area_index))
                storage.save_outage(Outage(None, OutageKind.PLANNED, OutageStatus.PLANNED, area, started_at=start,
                                           detected_at=now - timedelta(days=3), expected_restoration=end,
                                           planned_end=end, response_status="planned", reason="construction",
                                           source="operator", peak_count=homes,
                                           current_count=homes if start <= now else 0))
                continue
            indoor = i % INDOOR_EVERY == INDOOR_EVERY - 1
            meters = area_meters(spec, area_index)
            down = meters[-1:] if indoor else meters[:rng.randint(1, len(meters))]
            started = now - timedelta(minutes=rng.randint(1, 600))
            o = storage.save_outage(Outage(None, OutageKind.INDOOR if indoor else OutageKind.AREA,
                                           OutageStatus.DECLARED, area, started_at=started, detected_at=started,
                                           declared_at=started, peak_count=len(down), current_count=len(down)))
            storage.add_members(o.id, {meter_id(n): started for n in down})
    t2 = time.perf_counter()
    print(f"  store: {registrations:,} registrations in {t1 - t0:.1f} s ({registrations / (t1 - t0):,.0f}/s, bulk "
          f"upsert), {outages:,} open outages with their homes in {t2 - t1:.1f} s")
    customer = storage.registration(meter_id(0))
    return Fleet(storage, spec, customer.area, customer)


def serve(app, port: int):
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def timed(session: requests.Session, url: str, n: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(url, timeout=30)
        times.append(time.perf_counter() - t0)
        r.raise_for_status()
        size = len(r.content)
    return times, size


def sent(session: requests.Session, url: str) -> tuple[int, str]:
    """The bytes as sent (compressed, if the server compressed them), and the text."""
    r = session.get(url, timeout=30, stream=True)
    r.raise_for_status()
    raw = r.raw.read(decode_content=False)
    body = gzip.decompress(raw) if r.headers.get("content-encoding") == "gzip" else raw
    return len(raw), body.decode(r.encoding or "utf-8", "replace")


def weight(session: requests.Session, base: str, path: str) -> int:
    """The page and everything it makes the browser load (each once), in bytes as sent."""
    size, html = sent(session, base + path)
    return size + sum(sent(session, base + p)[0] for p in set(LOADS.findall(html)))


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def pages(fleet: Fleet, mypage_link: str, outage_id: int) -> dict[str, str]:
    area, customer = fleet.sample_area, fleet.customer
    return {
        "public lookup /": "/",
        "public prefecture /area/{pref} (per city)": f"/area/{quote(area.prefecture)}",
        "public city /area/{pref}/{city} (per district)": f"/area/{quote(area.prefecture)}/{quote(area.city)}",
        "accident list /ops/ (first page, newest first)": "/ops/",
        "accident list sorted by homes, page 50": "/ops/?sort=homes&page=50",
        "accident list filtered by city, oldest first": f"/ops/?area={quote(area.city)}&sort=started&order=asc",
        "one outage /ops/outages/{id}": f"/ops/outages/{outage_id}",
        "accident map /ops/map": "/ops/map",
        "prefecture map /ops/map?pref=広島県": f"/ops/map?pref={quote('広島県')}",
        "planned map /ops/map/planned": "/ops/map/planned",
        "search by address part, page 20": f"/ops/search?q={quote(area.city)}&page=20",
        "search by address words (city district)": f"/ops/search?q={quote(area.city + ' ' + area.district)}",
        "search by customer number": f"/ops/search?q={customer.customer_number}",
        "search by meter id": f"/ops/search?q={customer.meter_id}",
        "list by address /ops/by-address": "/ops/by-address",
        "customer (Fig. 10) /ops/customers/{meter}": f"/ops/customers/{customer.meter_id}",
        "customer's page /mypage (signed link)": mypage_link,
    }


def main(args) -> int:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from cloud.accounts import Accounts
    from cloud.outage.mail import Sender
    from cloud.outage.manager import OutageManager
    from cloud.web.app import create_app
    from cloud.web.mailer import Mailer
    from devkit.ports import free_port

    work = Path(tempfile.mkdtemp(prefix="bench-web-"))
    clock = ManualClock(datetime(2026, 11, 23, 18, 0, tzinfo=JST))
    pg, url = None, args.db or f"sqlite:///{work / 'outage.db'}"
    if url == "postgresql":
        from devkit.postgres import TempPostgres

        pg = TempPostgres().start()
        url = pg.create_database()
    print(f"smartmeter bench web — {datetime.now(JST).isoformat(timespec='seconds')}, storage {url.split('://')[0]}")
    try:
        fleet = build_store(url, args.registrations, args.outages, clock)
        accounts = Accounts(work / "operators.json")
        accounts.add(OPERATOR[0], "operator", OPERATOR[1])
        manager = OutageManager(fleet.storage, clock)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        mailer = Mailer(Sender(KEY), base, "127.0.0.1", 9)  # signs the customer's link; nothing is sent
        server = serve(create_app(fleet.storage, clock, key=KEY, accounts=accounts, manager=manager, mailer=mailer),
                       port)
        session = requests.Session()
        session.post(base + "/ops/login", data={"name": OPERATOR[0], "password": OPERATOR[1], "next": "/ops/"},
                     allow_redirects=False, timeout=30).raise_for_status()
        link, _ = mailer.link("/mypage", mailer.mypage_links, fleet.customer.meter_id, fleet.customer.email,
                              fleet.customer.language, clock.now())
        mypage = urlsplit(link)
        outage_id = next(o.id for o in fleet.storage.outages(True) if o.area == fleet.sample_area)
        figures = {}
        for name, path in pages(fleet, f"{mypage.path}?{mypage.query}", outage_id).items():
            heavy = weight(session, base, path)  # also warms the page up
            times, size = timed(session, base + path, args.samples)
            figures[name] = (times, size, heavy)
        server.should_exit = True
        # the bare baseline: the same server, a page of the same size that does no work
        largest = max(size for _, size, _ in figures.values())
        body = "<!doctype html><p>" + "x" * largest
        bare_port = free_port()
        bare = serve(Starlette(routes=[Route("/", lambda r: HTMLResponse(body))]), bare_port)
        bare_times, _ = timed(requests.Session(), f"http://127.0.0.1:{bare_port}/", args.samples)
        bare.should_exit = True
        b50 = statistics.median(bare_times)
        print(f"  {args.samples} requests per page, one at a time")
        print(f"  bare Starlette page of {largest / 1024:.0f} kB: p50 {b50 * 1000:.1f} ms, "
              f"p99 {pct(bare_times, 99) * 1000:.1f} ms")
        for name, (times, size, heavy) in figures.items():
            p50, p99 = statistics.median(times), pct(times, 99)
            print(f"  {name}: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms{'' if p99 < 0.2 else ' (OVER 200 ms)'}, "
                  f"{p50 / b50:.1f}x the bare page; HTML {size / 1024:.0f} kB, sent with what it loads {heavy / 1024:.0f} kB"
                  f"{'' if heavy < 200 * 1024 else ' (OVER 200 kB)'}")
        if not args.no_browser:
            from .web_live import live_update

            live_update(fleet, manager, clock, accounts, args.outages)
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)  # a million registrations are 400 MB of SQLite
    return 0
