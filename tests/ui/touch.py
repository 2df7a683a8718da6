"""Driving the real app by touch, for the UI scenarios (tests/ui/scenario.py): touch events through
the window, waits on what is drawn, screenshots, the results file, and the trace that no store
statement or emulation call runs on the UI thread."""
from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from pathlib import Path


class Run:
    def __init__(self, args):
        self.args = args
        self.results: dict[str, dict] = {}
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        prev = self.results.get(name)
        if prev is None or prev["ok"]:
            self.results[name] = {"ok": bool(ok), "detail": detail}
        return ok

    def save(self):
        Path(self.args.results).write_text(json.dumps(self.results, ensure_ascii=False, indent=1))


async def until(pred, timeout=15.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except Exception:
            pass
        await asyncio.sleep(step)
    return False


async def tap(widget, hold=0.05):
    """A real touch: down and up at the widget's centre, dispatched through the window."""
    from kivy.tests.common import UnitTestTouch

    await asyncio.sleep(0.05)
    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    await asyncio.sleep(hold)
    touch.touch_up()
    await asyncio.sleep(0.1)


async def drag(widget, dy: float, steps: int = 8) -> None:
    """A finger sliding up by ``dy`` over the widget, fast enough for Kivy's ScrollView to take it as
    a scroll (beyond scroll_distance within scroll_timeout), dispatched through the window."""
    from kivy.tests.common import UnitTestTouch

    x, y = widget.to_window(widget.center_x, widget.y + widget.height * 0.15)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    for i in range(1, steps + 1):
        await asyncio.sleep(0.005)
        touch.touch_move(x, y + dy * i / steps)
    await asyncio.sleep(0.05)
    touch.touch_up()


def visible_in(item, scroll) -> bool:
    """Whether the item lies wholly inside the scroll view's window area."""
    _, bottom = item.to_window(item.x, item.y)
    _, top = item.to_window(item.x, item.top)
    _, s_bottom = scroll.to_window(scroll.x, scroll.y)
    _, s_top = scroll.to_window(scroll.x, scroll.top)
    return bottom >= s_bottom - 1 and top <= s_top + 1


async def frames(app, n=3):
    start = app.frames
    await until(lambda: app.frames >= start + n, 5)


async def shot(app, run: Run, name: str):
    from kivy.core.window import Window

    await frames(app, 4)
    path = Path(Window.screenshot(name=str(run.out / f"{name}.png")))
    final = run.out / f"{name}.png"
    if path.exists():
        path.replace(final)
    run.check(f"screenshot:{name}", final.exists(), str(final))


async def open_drawer(app):
    await tap(app.nav.drawer)
    await until(lambda: app.drawer.is_open, 3)
    await frames(app, 2)


async def close_drawer(app):
    app.drawer.dismiss()
    await until(lambda: not app.drawer.is_open, 3)
    await frames(app, 2)


async def insert(app, slot, card):
    await open_drawer(app)
    await tap(app.drawer.cards[card])
    await tap(app.drawer.insert[slot])
    await close_drawer(app)


class AheadClock:
    """A meter clock running ahead of another by a fixed time."""

    def __init__(self, clock, ahead: timedelta) -> None:
        self.clock, self.ahead = clock, ahead

    def now(self):
        return self.clock.now() + self.ahead


def supply_company(store):
    c = store.supply_contract()
    return c.company.code if c else None


def events(emu, code):
    return [e["event"] for e in emu.company_events(code)]


# --- scenarios --------------------------------------------------------------------------------

class UiThreadIo:
    """Every store statement and emulation call the app makes on the UI (main) thread: there must be
    none, the worker makes them. The scenario's own checks use connections of their own."""

    def __init__(self, emu) -> None:
        import threading

        self.on_ui: list[str] = []
        self.elsewhere = 0  # statements on other threads: proof the trace is live
        self._ui = threading.main_thread()
        self._current = threading.current_thread
        emu.api.store.db.set_trace_callback(lambda sql: self._saw(f"store: {sql[:80]}"))
        call = emu.control._call
        emu.control._call = lambda action, *args: (self._saw(f"emulation: {action}"), call(action, *args))[1]

    def _saw(self, what: str) -> None:
        if self._current() is self._ui:
            self.on_ui.append(what)
        else:
            self.elsewhere += 1


