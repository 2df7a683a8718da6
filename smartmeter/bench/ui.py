"""``smartmeter bench ui``: frame time and touch-to-screen latency of the UI with data flowing, as
ratios to an empty Kivy app measured in the same run under the same Xvfb; resident memory.

Each app runs in its own process (one Kivy window per process) under one Xvfb this bench starts.
The UI runs as on the meter: its own process beside the meter's (an emulated system measuring
every second, ``python -m smartmeter.emulation``), reading the store through MeterAPI and polling
the card readers; the figures are the UI process's.
Frames are uncapped (``maxfps 0``) and redrawn continuously. A frame is timed when the buffer swap
has returned (the image is then in the X server), not when ``on_flip`` is dispatched (before the
swap, so before Mesa has rendered anything). Two figures per frame:

* frame time, swap to swap: what the eye sees. It also holds whatever the event loop does between
  frames, and under Xvfb the minimal apps' loops spend more there than the UI's, so this ratio can
  come out below 1 without the UI drawing less.
* CPU time per frame: the process's CPU time (every thread: Mesa's software renderer, the UI's
  card readers, the Python loop) over the frames drawn. This is what a frame costs, whatever the
  pacing, and is the figure to judge the UI's weight by.

Besides Kivy's minimal app (one Button filling the window) the bench runs a bare window (one
Label, no background) as a floor.

Latency, measured the same way in every app: a touch (down and up, dispatched through the window)
on a button whose release changes what is shown -- the minimal apps show a new count, the
UI's tab buttons switch the screen -- and the time from the touch to the end of the swap of the
first frame that shows that change (checked on the widget tree drawn in that frame).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.5


def start_xvfb(size: tuple[int, int]) -> tuple[subprocess.Popen, str]:
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{size[0]}x{size[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start (apt-get install xvfb)")
    return proc, f":{number}"


KEYS = (("cpu_ms_per_frame", "CPU time per frame (ms)"),
        ("frame_ms_median", "frame time median (ms)"), ("frame_ms_p95", "frame time p95 (ms)"),
        ("touch_ms_median", "touch-to-screen median (ms)"), ("touch_ms_p95", "touch-to-screen p95 (ms)"))


BASELINES = (("empty", "Kivy's minimal app: one Button filling the window"),
             ("bare", "a bare window: one Label, no background"))


def run_bench(size=(800, 480), seconds: float = 6.0, rounds: int = 3) -> int:
    """``rounds`` rounds, each running every app, in rotating order: a software renderer on a shared
    machine drifts by tens of percent over a minute, and a ratio of neighbours cancels most of it."""
    xvfb, display = start_xvfb(size)
    runs: list[dict[str, dict]] = []
    kinds = ("ui",) + tuple(k for k, _ in BASELINES)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ui-") as tmp:
            from smartmeter.attach import EmulationProcess

            with EmulationProcess(Path(tmp) / "system", interval="1s", nfc=False, load=1200.0) as system:
                for r in range(rounds):
                    order = kinds[r % len(kinds):] + kinds[:r % len(kinds)]
                    runs.append({kind: _run_child(kind, display, Path(tmp), system.workdir, size, seconds)
                                 for kind in order})
                meter_rss = _rss_mib(system.pid)
    finally:
        xvfb.terminate()
        xvfb.wait(5)
    report(runs, size, seconds, meter_rss)
    return 0


def report(runs: list[dict[str, dict]], size, seconds: float, meter_rss: float) -> None:
    """Medians over the rounds of each figure, and of the per-round ratios of the UI to each baseline;
    the goal is judged against the empty app."""
    med = statistics.median
    print(f"UI benchmark at {size[0]}x{size[1]} under Xvfb (Mesa), {len(runs)} rounds x {seconds:.0f} s per app, "
          f"data flowing")
    for kind, what in BASELINES:
        print(f"  {kind}: {what}")
    print(f"{'':28}{'UI':>9}{'empty':>9}{'bare':>9}{'UI/empty':>10}  goal       {'UI/bare':>8}   UI/empty by round")
    for key, label in KEYS:
        u, e, b = (med(x[k][key] for x in runs) for k in ("ui", "empty", "bare"))
        to_empty = [x["ui"][key] / x["empty"][key] for x in runs]
        to_bare = med(x["ui"][key] / x["bare"][key] for x in runs)
        ratio = med(to_empty)
        print(f"{label:28}{u:9.2f}{e:9.2f}{b:9.2f}{ratio:10.2f}  <= {GOAL}x {'ok  ' if ratio <= GOAL else 'OVER'}"
              f"{to_bare:8.2f}   {' '.join(f'{x:.2f}' for x in to_empty)}")
    rss = {k: max(x[k]["rss_mib"] for x in runs) for k in ("ui", "empty", "bare")}
    print(f"{'resident memory (MiB)':28}{rss['ui']:9.1f}{rss['empty']:9.1f}{rss['bare']:9.1f}"
          f"   (UI process; the emulated meter beside it: {meter_rss:.1f} MiB)")
    print("frames measured per round: " + ", ".join(f"{k} {runs[0][k]['frames']}" for k in ("ui", "empty", "bare"))
          + f"; touches per app: {runs[0]['ui']['touches']}")


def _run_child(kind: str, display: str, tmp: Path, workdir: Path, size, seconds: float) -> dict:
    out = tmp / f"{kind}.json"
    env = {**os.environ, "DISPLAY": display, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1",
           "KIVY_HOME": str(tmp / "kivy")}
    subprocess.run([sys.executable, "-m", "smartmeter.bench.ui", "child", kind, "--out", str(out), "--seconds", str(seconds),
                    "--size", f"{size[0]}x{size[1]}", "--workdir", str(workdir)],
                   env=env, cwd=Path(__file__).resolve().parents[2], check=True, timeout=seconds * 4 + 120)
    return json.loads(out.read_text())


def _rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(kind: str, out: Path, seconds: float, size: tuple[int, int], workdir: Path) -> None:
    from ui.app import UiSettings, create_app, prepare_kivy

    prepare_kivy(size)
    from kivy.config import Config

    Config.set("graphics", "maxfps", "0")
    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button
    from kivy.uix.label import Label

    emu, readers = None, []
    if kind == "ui":
        from smartmeter.attach import attach

        emu = attach(workdir)  # the kiosk's arrangement: the meter's store, the card readers, no drawer
        slots = emu.card_slots(("1", "2", "3"))
        readers = emu.start_card_readers(slots.callbacks())
        app = create_app(emu.api, slots, UiSettings(panel="a"))
        screens = ("meter", "contracts", "usage")

        def target(i):
            name = screens[i % len(screens)]
            # shown: the tab's screen is the only one in the manager (the switch is complete) and drawn
            return app.nav.tabs[name], lambda: (app.sm.current_screen is not None and
                                                app.sm.current_screen.name == name and
                                                len(app.sm.children) == 1)
    else:
        class Empty(App):
            def build(self):
                box = BoxLayout()
                if kind == "empty":
                    self.button = Button(text="0")
                    self.button.bind(on_release=lambda b: setattr(b, "text", str(int(b.text) + 1)))
                else:  # bare: the same count on a Label, which draws nothing but its text
                    self.button = Label(text="0")
                    self.button.bind(on_touch_up=lambda b, _t: setattr(b, "text", str(int(b.text) + 1)))
                box.add_widget(self.button)
                return box
        app = Empty()

        rendered = [None]  # the text the button's current texture was rendered from

        def target(i):
            if rendered[0] is None:
                app.button.bind(texture=lambda b, tex: rendered.__setitem__(0, b.text if tex is not None else None))
                rendered[0] = app.button.text
            want = str(int(app.button.text) + 1)
            # shown: the button's texture was rendered from the new count
            return app.button, lambda: rendered[0] == want

    flips: list[float] = []
    shown: list = []  # [predicate, time of the first swap that showed it]
    swap = Window.flip

    def timed_flip():
        swap()
        now = time.perf_counter()
        flips.append(now)
        if shown and shown[1] is None and shown[0]():
            shown[1] = now

    Window.flip = timed_flip  # called by Window.on_flip after the frame is drawn
    Clock.schedule_interval(lambda dt: Window.canvas.ask_update(), 0)
    figures: dict = {}

    async def drive():
        from kivy.tests.common import UnitTestTouch

        t0 = time.monotonic()
        while len(flips) < 30 and time.monotonic() - t0 < 30:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        start, cpu0 = len(flips), time.process_time()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        span = flips[start:]
        frame_ms = [(b - a) * 1000 for a, b in zip(span, span[1:])]
        touch_ms = []
        for i in range(30):
            w, pred = target(i)
            x, y = w.to_window(*w.center)
            touch = UnitTestTouch(x, y)
            shown[:] = [pred, None]
            t = time.perf_counter()
            touch.touch_down()
            touch.touch_up()
            deadline = time.monotonic() + 5
            while shown[1] is None and time.monotonic() < deadline:
                await asyncio.sleep(0)
            if shown[1] is None:
                raise RuntimeError(f"touch {i} on {w!r}: no frame showed its result within 5 s")
            touch_ms.append((shown[1] - t) * 1000)
            shown[:] = []
            await asyncio.sleep(0.05)
        q = statistics.quantiles
        figures.update(frames=len(frame_ms), cpu_ms_per_frame=cpu * 1000 / len(span), frame_ms_median=statistics.median(frame_ms),
                       frame_ms_p95=q(frame_ms, n=20)[-1], touch_ms_median=statistics.median(touch_ms),
                       touch_ms_p95=q(touch_ms, n=20)[-1], touches=len(touch_ms), rss_mib=_rss_mib())
        app.stop()

    async def both():
        task = asyncio.ensure_future(drive())
        await app.async_run(async_lib="asyncio")
        await task

    try:
        asyncio.run(both())
    finally:
        for r in readers:
            r.stop()
        if emu is not None:
            emu.close()
    out.write_text(json.dumps(figures))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m smartmeter.bench.ui")
    p.add_argument("mode", choices=["child", "run"])
    p.add_argument("kind", nargs="?", choices=["empty", "bare", "ui"])
    p.add_argument("--out", type=Path)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--size", default="800x480")
    p.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-ui")
    a = p.parse_args(argv)
    size = tuple(int(x) for x in a.size.split("x"))
    if a.mode == "run":
        return run_bench(size, a.seconds)
    child(a.kind, a.out, a.seconds, size, a.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())


def cmd_bench(args) -> int:
    return run_bench(size=args.size, seconds=args.seconds, rounds=args.rounds)
