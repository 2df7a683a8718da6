"""The live figure of ``smartmeter bench web``: distribution automation declares an outage
(``OutageManager.report_da``) while three pages are open in Chromium: the operators' accident map
(``/ops/map``), the accident list with its notice column (``/ops/``) and the public prefecture page.
Each page notes, in the browser, the moment its live part first shows the new outage; the figure
is that moment minus the declaration (one clock: the same machine)."""
from __future__ import annotations

import shutil
import statistics
import time
from urllib.parse import quote

ROUNDS = 5
# in the page: note Date.now() once the element's text contains `want` (or, with no `want`, once it
# reads differently from when the watch began); the live script replaces the element's contents
WATCH = """([selector, want]) => {
  const read = () => (document.querySelector(selector) || {}).textContent || "";
  const before = read();
  window.__seen = 0;
  const check = () => {
    const now = read();
    if (!window.__seen && (want ? now.includes(want) : now !== before)) { window.__seen = Date.now(); }
  };
  new MutationObserver(check).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def seen(tab, timeout_s: float = 30.0) -> float:
    """When the page noted the outage (ms since the epoch); polled, as the strict CSP forbids
    Playwright's wait_for_function (an eval), while evaluate itself goes through."""
    deadline = time.monotonic() + timeout_s
    while not (at := tab.evaluate("() => window.__seen")):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tab.url} did not show the declared outage in {timeout_s:.0f} s")
        time.sleep(0.1)
    return at


def quiet_areas(fleet, outages: int) -> list:
    """Registered areas with no outage yet (beyond the ones the store's outages took), or, in a store
    whose every area has one, areas no customer is in."""
    from cloud.outage.topology import area_of

    first = outages if fleet.spec.areas >= outages + ROUNDS else 1_000_000
    return [area_of(first + k) for k in range(ROUNDS)]


def live_update(fleet, manager, clock, accounts, outages: int) -> None:
    from playwright.sync_api import sync_playwright

    from cloud.outage.model import DaEvent
    from cloud.web.app import create_app
    from devkit.ports import free_port

    from .web import KEY, OPERATOR, serve

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(create_app(fleet.storage, clock, key=KEY, accounts=accounts, manager=manager), port)
    delays: dict[str, list[float]] = {"accident map /ops/map": [], "notice column of /ops/": [],
                                      "public prefecture page": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-background-networking"])
        context = browser.new_context()
        signin = context.new_page()
        signin.goto(base + "/ops/login")
        signin.fill("#name", OPERATOR[0])
        signin.fill("#password", OPERATOR[1])
        signin.click("button[type=submit]")
        signin.wait_for_url(base + "/ops/")
        signin.close()
        tabs = {name: context.new_page() for name in delays}
        for area in quiet_areas(fleet, outages):
            watches = {"accident map /ops/map": ("/ops/map", ".map-total", ""),
                       "notice column of /ops/": ("/ops/", "#notices", area.label(" ")),
                       "public prefecture page": (f"/area/{quote(area.prefecture)}", "#live-table",
                                                  f"{area.city} {area.district}")}
            for name, (path, selector, want) in watches.items():
                tabs[name].goto(base + path)
                tabs[name].wait_for_timeout(300)  # the event stream connects
                tabs[name].evaluate(WATCH, [selector, want])
            clock.advance(60)  # a minute apart, so each declaration is the newest notice
            t0 = time.time() * 1000
            manager.report_da(DaEvent(area, "outage", clock.now(), "bench"))
            for name, tab in tabs.items():
                delays[name].append((seen(tab) - t0) / 1000)
        browser.close()
    server.should_exit = True
    for name, values in delays.items():
        print(f"  declared outage -> {name} updated in Chromium: median {statistics.median(values):.1f} s, "
              f"worst {max(values):.1f} s ({len(values)} declarations)")
    print("  (each page's event stream checks the open outages every 2 s, then the page refetches its live part)")
