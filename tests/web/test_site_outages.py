"""The pages' shared read of the open outages: a page never waits on a slow read while a recent copy
exists, and never shows a copy that is older than OUTAGES_STALE_S."""
from __future__ import annotations

import asyncio
import threading

from cloud.web import site as site_module
from cloud.web.site import Site


class SlowStore:
    """A store whose read of the open outages blocks until the test lets it go."""

    def __init__(self) -> None:
        self.version, self.reads, self.gate = 0, 0, threading.Event()

    def open_outages_reusing(self, earlier: dict) -> tuple[list[int], dict]:
        self.reads += 1
        self.gate.wait(10)
        return [self.version], {}


def run(scenario) -> None:
    """``asyncio.run`` on a thread of its own: the browser tests' Playwright keeps a loop on this one."""
    failure = []

    def main():
        try:
            asyncio.run(scenario())
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            failure.append(exc)
    thread = threading.Thread(target=main)
    thread.start()
    thread.join(30)
    if failure:
        raise failure[0]


def site_on(store: SlowStore) -> Site:
    site = Site.__new__(Site)  # only the store is used by open_outages
    site.storage, site._outages, site._reading, site._outage_rows = store, None, None, {}
    return site


def test_a_recent_copy_is_shown_while_a_slow_read_goes_on(monkeypatch):
    async def scenario():
        store = SlowStore()
        site = site_on(store)
        store.gate.set()
        assert await site.open_outages() == [0]
        store.gate.clear()
        store.version = 1
        monkeypatch.setattr(site_module, "OUTAGES_FRESH_S", 0.0)  # the copy is due for a new read
        assert await site.open_outages() == [0]  # the read is blocked: the last copy is shown
        assert await site.open_outages() == [0]
        assert store.reads == 2  # one read under way, however many pages ask
        store.gate.set()
        await site._reading
        assert await site.open_outages() == [1]

    run(scenario)


def test_an_old_copy_is_waited_for(monkeypatch):
    async def scenario():
        store = SlowStore()
        site = site_on(store)
        store.gate.set()
        assert await site.open_outages() == [0]
        store.version = 1
        monkeypatch.setattr(site_module, "OUTAGES_STALE_S", 0.0)
        monkeypatch.setattr(site_module, "OUTAGES_FRESH_S", 0.0)
        assert await site.open_outages() == [1]

    run(scenario)

