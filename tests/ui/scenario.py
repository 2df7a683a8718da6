"""One UI scenario in its own process (Kivy allows one window per process).

Run by tests/ui/test_ui.py under an Xvfb the test started, beside an emulated system the test
started (``python -m smartmeter.emulation``, built from real parts): it attaches to that system as
the kiosk attaches to a meter, opens the app, drives it only with touch events (kivy.tests'
UnitTestTouch dispatched through the window), checks the core (a second store connection) and the
company servers (their own databases, fed over MQTT), saves screenshots, and writes every check to a
JSON results file.

    python tests/ui/scenario.py SCENARIO --attach WORKDIR --out DIR --results FILE [--size WxH]
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ui.app import UiSettings, create_app, prepare_kivy  # noqa: E402
from smartmeter.kiosk import parse_size  # noqa: E402
from touch import (AheadClock, Run, UiThreadIo, close_drawer, drag, events, frames, insert, open_drawer,  # noqa: E402
                   shot, supply_company, tap, until, visible_in)


async def marks(app, run, emu):
    """Fig. 7: forward, no load, reverse, breaker open, set from the drawer by touch."""
    drawer, meter = app.drawer, app.meter
    cases = [("forward", drawer.load[1500], ("blink", "off")), ("no_load", drawer.load[0], ("on", "on")),
             ("reverse", drawer.solar[2000], ("off", "blink")), ("breaker_open", drawer.breaker, ("blink", "blink"))]
    for state, button, want in cases:
        await open_drawer(app)
        await tap(button)
        await close_drawer(app)
        ok = await until(lambda: meter.flow_state == state, 20)
        fwd, rev = meter.forward_mark, meter.reverse_mark
        modes = (fwd.mode, rev.mode)
        # watch the marks for a second: a blinking mark must be seen both lit and dark
        seen = {"f": set(), "r": set()}
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.2:
            seen["f"].add(fwd.lit)
            seen["r"].add(rev.lit)
            await asyncio.sleep(0.05)
        expect_seen = {"blink": {True, False}, "on": {True}, "off": {False}}
        run.check(f"marks:{state}", ok and modes == want and seen["f"] == expect_seen[want[0]]
                  and seen["r"] == expect_seen[want[1]],
                  f"state={meter.flow_state} modes={modes} seen={seen} power={meter.power_seg.text}")
        await shot(app, run, f"meter_{state}")
    await open_drawer(app)
    await tap(drawer.breaker)  # close the breaker again
    await tap(drawer.load[1500])
    await close_drawer(app)
    await until(lambda: meter.flow_state == "forward", 20)


async def panel_a(app, run, emu):
    from appliance.store import Store

    store = Store(emu.api.store.path)
    drawer = app.drawer
    await shot(app, run, "meter")
    await marks(app, run, emu)

    for slot, card in (("1", "tepco"), ("2", "eneos"), ("3", "looop")):
        await insert(app, slot, card)
    ok = await until(lambda: all(app.cards.snapshot()[s].verified for s in "123"), 20)
    run.check("cards:read", ok, str({s: (v.present, v.problem) for s, v in app.cards.snapshot().items()}))
    await tap(app.nav.tabs["panel"])
    slots = app.panel.slots
    ok = await until(lambda: slots["1"].lit and not slots["2"].lit, 10)
    run.check("panel_a:lit_in_force", ok, "slot 1 (TEPCO, commissioned) lights")
    await shot(app, run, "panel_a")

    # select slot 2: switches at once, in the core and on MQTT
    await tap(slots["2"].select)
    ok_core = await until(lambda: supply_company(store) == "ENEOS-P", 15)
    ok_mqtt = await until(lambda: "contract_started" in events(emu, "ENEOS-P"), 15)
    ok_ended = await until(lambda: "contract_ended" in events(emu, "TEPCO-EP"), 15)
    ok_lit = await until(lambda: slots["2"].lit and not slots["1"].lit, 10)
    run.check("panel_a:select_switches_core", ok_core, f"supply={supply_company(store)}")
    run.check("panel_a:select_on_mqtt", ok_mqtt and ok_ended,
              f"ENEOS={events(emu, 'ENEOS-P')} TEPCO={events(emu, 'TEPCO-EP')}")
    run.check("panel_a:select_lights", ok_lit)
    await shot(app, run, "panel_a_selected")

    # date-time set on slot 3: unset shows grey; set schedules the switch
    when = slots["3"].when
    run.check("panel_a:unset_grey", not slots["3"].when_set and tuple(when.color)[:3] == tuple(app_grey())[:3],
              f"text={when.text} color={tuple(when.color)}")
    # The picker starts from the meter's clock, not the wall clock: here the UI's meter clock runs
    # three hours ahead while the picker opens (as the demo's scaled clock runs ahead), then the core's
    # own clock again (it checks the time and releases the company's message).
    wall_clock = emu.api.clock
    meter_clock = emu.api.clock = AheadClock(wall_clock, timedelta(hours=3))
    await tap(slots["3"].set_time)
    await until(lambda: app.panel.datetime is not None and app.panel.datetime.is_open, 5)
    emu.api.clock = wall_clock
    await frames(app, 2)
    picker = app.panel.datetime
    ahead = (picker.value - meter_clock.now()).total_seconds()
    run.check("schedule:picker_on_meter_clock", 55 <= ahead <= 121, f"starts {ahead:.0f} s after the meter's now")
    await tap(picker.hour.plus)
    await tap(picker.minute.plus)
    await shot(app, run, "panel_a_datetime")
    await tap(picker.ok)
    ok = await until(lambda: any(ch.company.code == "LOOOP" and ch.switch.at is not None
                                 for ch, _ in store.changes(("pending",))), 10)
    pend = [(ch.company.code, ch.switch.at, ch.source) for ch, _ in store.changes(("pending",))]
    run.check("schedule:pending_in_core", ok, str(pend))
    at = next((a for c, a, _ in pend if c == "LOOOP"), None)
    mins = (at - meter_clock.now()).total_seconds() / 60 if at else 0
    run.check("schedule:time_from_buttons", at is not None and 61 <= mins <= 64, f"{mins:.1f} min ahead")
    ok = await until(lambda: slots["3"].when_set, 10)
    run.check("schedule:display_set", ok and when.text.count(":") == 1, when.text)
    ok = await until(lambda: "contract_scheduled" in events(emu, "LOOOP"), 15)
    run.check("schedule:on_mqtt", ok, str(events(emu, "LOOOP")))
    run.check("schedule:not_yet_switched", supply_company(store) == "ENEOS-P")
    await shot(app, run, "panel_a_scheduled")

    await tap(app.nav.tabs["contracts"])
    await until(lambda: len(app.contracts.list.children) >= 4, 5)
    await shot(app, run, "contracts")

    # a refused card: its reason in plain words, on the slot and on the alerts screen
    await insert(app, "1", "rogue")
    ok = await until(lambda: app.cards.snapshot()["1"].problem is not None, 20)
    prob = app.cards.snapshot()["1"].problem or {}
    await tap(app.nav.tabs["panel"])
    await frames(app, 3)
    slot_text = slots["1"].card.text
    run.check("rejected:slot_reason", ok and prob.get("reason_ja", "") in slot_text and prob.get("reason_ja"),
              f"{prob} | {slot_text}")
    await shot(app, run, "panel_a_rejected")
    await tap(app.nav.tabs["alerts"])
    await frames(app, 3)
    run.check("rejected:alerts_reason", any(prob.get("reason_ja", "@@") in t for t in alert_texts(app)),
              str(alert_texts(app))[:300])

    # a security error through the real confirmation flow (embodiment 4): HEMS-LAB's server answers
    # with a spoofed record; selecting its card holds the switch and raises the alert
    await open_drawer(app)
    await tap(drawer.cards["hems"])
    await tap(drawer.spoof)
    await tap(drawer.insert["2"])
    await close_drawer(app)
    ok = await until(lambda: (app.cards.snapshot()["2"].company or {}).get("code") == "HEMS-LAB", 20)
    await tap(app.nav.tabs["panel"])
    await tap(slots["2"].select)
    ok = ok and await until(lambda: "security_error" in events(emu, "HEMS-LAB"), 30)
    await tap(app.nav.tabs["alerts"])
    ok_shown = await until(lambda: any("HEMS-LAB" in t and "遮断器は閉じています" in t for t in alert_texts(app)), 10)
    run.check("alerts:security", ok and ok_shown and "contract_started" not in events(emu, "HEMS-LAB"),
              f"HEMS events={events(emu, 'HEMS-LAB')} alerts={alert_texts(app)}"[:600])
    run.check("alerts:security_in_core", any(a["kind"] == "security_error" and a["company_code"] == "HEMS-LAB"
                                             for a in store.alerts()), str(store.alerts())[:300])
    await shot(app, run, "alerts_security")

    # lost cloud connection: readings queue
    await open_drawer(app)
    await tap(drawer.broker)
    await close_drawer(app)
    ok = await until(lambda: app.view.link is not None and not app.view.link.connected and app.view.queued > 0, 30)
    await frames(app, 3)
    run.check("alerts:link_lost_queued", ok and any("未送信の計量値" in t for t in alert_texts(app)),
              str(alert_texts(app))[:300])
    from ui.i18n import TEXTS

    reasons = [TEXTS[k][0] for k in ("link_lost", "link_unreachable")]  # dropped, then not reachable
    ok = await until(lambda: any(r in t for t in alert_texts(app) for r in reasons), 15)
    run.check("alerts:link_reason", ok, str(alert_texts(app))[:300])
    await shot(app, run, "alerts")
    await open_drawer(app)
    await tap(drawer.broker)
    await close_drawer(app)

    usage = app.usage
    await tap(app.nav.tabs["usage"])
    ok = await until(lambda: any(v for v in usage.chart.values), 15)
    run.check("usage:today", ok and len(usage.chart.values) == 48, str(usage.chart.values))
    await shot(app, run, "usage")
    # earlier days the store still holds (the emulation starts with two days of history)
    today = usage.day
    days = []
    for _ in range(3):  # the third press is at the oldest day: the button is disabled and nothing moves
        await tap(usage.prev)
        await until(lambda: usage.day != (days[-1] if days else today), 3)
        await frames(app, 2)
        days.append(usage.day)
    oldest = (today - timedelta(days=2)).strftime("%Y/%m/%d")
    run.check("usage:earlier_days",
              days == [today - timedelta(days=1), today - timedelta(days=2), today - timedelta(days=2)] and
              all(v is not None for v in usage.chart.values) and  # 48 half hours, each measured
              len(usage.chart.values) == 48 and oldest in usage.title.text and
              usage.prev.disabled and not usage.next.disabled,
              f"today={today} days={days} bars={usage.chart.values} title={usage.title.text}")
    await shot(app, run, "usage_earlier")
    for _ in range(2):
        await tap(usage.next)
    run.check("usage:back_to_today", await until(lambda: usage.day == today, 5), str(usage.day))

    await tap(app.top.lang)
    await tap(app.nav.tabs["meter"])
    run.check("language:english", app.nav.tabs["meter"].text == "Meter", app.nav.tabs["meter"].text)
    await shot(app, run, "meter_en")
    await tap(app.nav.tabs["panel"])
    await shot(app, run, "panel_a_en")
    await open_drawer(app)
    await shot(app, run, "drawer")
    await close_drawer(app)
    store.close()


def alert_texts(app) -> list[str]:
    return [w.text for w in app.alerts.list.walk() if hasattr(w, "text")]


def app_grey():
    from ui.widgets import GREY

    return GREY


async def panel_b(app, run, emu):
    from appliance.store import Store

    store = Store(emu.api.store.path)
    panel = app.panel
    for card in ("tepco", "eneos", "tepco-night"):
        await insert(app, "1", card)
        await until(lambda: any(e["name"] for e in app.cards.entries()) and
                    app.cards.snapshot()["1"].verified is not None and
                    app.cards.snapshot()["1"].company["code"] == {"tepco": "TEPCO-EP", "eneos": "ENEOS-P",
                                                                 "tepco-night": "TEPCO-EP"}[card], 20)
    await tap(app.nav.tabs["panel"])
    ok = await until(lambda: len(panel.picker.entries) == 3 and panel.picker.original is not None, 10)
    await frames(app, 3)
    names = [(e["code"], e.get("menu")) for e in panel.picker.entries]
    orig = panel.picker.original
    run.check("panel_b:list", ok, f"{names} original={orig}")
    run.check("panel_b:original_highlighted", panel.picker.highlight == orig and
              panel.companies.items[orig].highlighted)
    await shot(app, run, "panel_b")

    await tap(panel.select)
    moved = panel.picker.highlight
    run.check("panel_b:select_moves", moved == (orig + 1) % 3 and panel.companies.items[moved].highlighted,
              f"{orig} -> {moved}")
    await shot(app, run, "panel_b_selecting")
    await tap(panel.cancel)
    run.check("panel_b:cancel_restores", panel.picker.highlight == orig and panel.companies.items[orig].highlighted)
    run.check("panel_b:cancel_no_change", supply_company(store) == "TEPCO-EP" and not store.changes(("pending",)))

    # a touch on an entry highlights it; Cancel still returns to the one in force
    touched = (orig + 2) % 3
    await tap(panel.companies.items[touched])
    run.check("panel_b:touch_highlights", panel.picker.highlight == touched and
              panel.companies.items[touched].highlighted and not store.changes(("pending",)),
              f"touched {touched}, highlight {panel.picker.highlight}")
    await tap(panel.cancel)
    run.check("panel_b:touch_then_cancel", panel.picker.highlight == orig)

    target = next(i for i, (c, m) in enumerate(names) if c == "ENEOS-P")
    for _ in range(3):
        if panel.picker.highlight == target:
            break
        await tap(panel.select)
    await tap(panel.ok)
    ok_core = await until(lambda: supply_company(store) == "ENEOS-P", 15)
    ok_mqtt = await until(lambda: "contract_started" in events(emu, "ENEOS-P"), 15)
    run.check("panel_b:ok_switches_core", ok_core, f"supply={supply_company(store)}")
    run.check("panel_b:ok_on_mqtt", ok_mqtt, str(events(emu, "ENEOS-P")))
    ok = await until(lambda: panel.picker.original == target and panel.picker.highlight == target, 10)
    run.check("panel_b:ok_becomes_original", ok)
    await frames(app, 3)
    await shot(app, run, "panel_b_ok")
    # more companies than fit: the list scrolls under a finger
    for card, code in (("looop", "LOOOP"), ("hems", "HEMS-LAB")):
        await insert(app, "1", card)
        await until(lambda: (app.cards.snapshot()["1"].company or {}).get("code") == code, 20)
    ok = await until(lambda: len(panel.picker.entries) == 5 and len(panel.companies.items) == 5, 20)
    await frames(app, 3)
    scroll, last = panel.companies.scroll, panel.companies.items[4]
    hidden_before, highlight = not visible_in(last, scroll), panel.picker.highlight
    dy = scroll.height * 0.8
    await drag(scroll, dy)
    await frames(app, 5)
    run.check("panel_b:scrolls", ok and hidden_before and scroll.scroll_y < 1 and visible_in(last, scroll) and
              panel.picker.highlight == highlight,  # a drag scrolls; it does not pick the entry under the finger
              f"entries={len(panel.picker.entries)} hidden_before={hidden_before} scroll_y={scroll.scroll_y:.2f} "
              f"dragged={dy:.0f}px")
    await shot(app, run, "panel_b_scrolled")
    # the card leaves the slot: the next start must list the companies from the meter's own store
    await open_drawer(app)
    await tap(app.drawer.remove["1"])
    await close_drawer(app)
    await until(lambda: app.cards.snapshot()["1"].verified is None, 10)
    store.close()


async def panel_b_restart(app, run, emu):
    """A new UI process on the same meter (a reboot of the kiosk): no card in the slot, yet the
    Fig. 9(b) list holds every company read before, and the one in force is lit."""
    from appliance.store import Store

    store = Store(emu.api.store.path)
    panel = app.panel
    empty = all(s.verified is None for s in app.cards.snapshot().values())
    await tap(app.nav.tabs["panel"])
    ok = await until(lambda: len(panel.picker.entries) == 5 and panel.picker.original is not None, 15)
    await frames(app, 3)
    names = [(e["code"], e.get("menu")) for e in panel.picker.entries]
    run.check("panel_b_restart:list_restored",
              ok and empty and {c for c, _ in names} == {"TEPCO-EP", "ENEOS-P", "LOOOP", "HEMS-LAB"},
              f"{names} slots empty={empty}")
    orig = panel.picker.original
    run.check("panel_b_restart:in_force_highlighted",
              orig is not None and names[orig][0] == supply_company(store) == "ENEOS-P" and
              panel.companies.items[orig].highlighted, f"original={orig} supply={supply_company(store)}")
    await shot(app, run, "panel_b_restart")
    # and a stored entry still switches: back to TEPCO (従量電灯B), straight from the store
    target = next(i for i, (c, m) in enumerate(names) if c == "TEPCO-EP" and m == "従量電灯B")
    while panel.picker.highlight != target:
        await tap(panel.select)
    await tap(panel.ok)
    ok_core = await until(lambda: supply_company(store) == "TEPCO-EP", 15)
    run.check("panel_b_restart:stored_entry_switches", ok_core, f"supply={supply_company(store)}")
    store.close()


async def sizes(app, run, emu):
    await insert(app, "1", "tepco")
    await until(lambda: app.cards.snapshot()["1"].verified is not None, 20)
    from kivy.core.window import Window

    tag = f"{Window.width}x{Window.height}"
    await shot(app, run, f"meter_{tag}")
    for screen in ("panel", "contracts"):
        await tap(app.nav.tabs[screen])
        await shot(app, run, f"{screen}_{tag}")


SCENARIOS = {"panel_a": (panel_a, "a"), "panel_b": (panel_b, "b"),
             "panel_b_restart": (panel_b_restart, "b"), "sizes": (sizes, "a")}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("--attach", required=True, type=Path, help="the running emulated system's work directory")
    p.add_argument("--out", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--size", type=parse_size, default=(800, 480))
    args = p.parse_args()
    fn, panel = SCENARIOS[args.scenario]
    run = Run(args)
    prepare_kivy(args.size)
    from smartmeter.attach import attach

    emu = attach(args.attach)
    readers = []
    code = 0
    try:
        slots = emu.card_slots()
        readers = emu.start_card_readers(slots.callbacks())
        io = UiThreadIo(emu)
        app = create_app(emu.api, slots, UiSettings(panel=panel), emulation=emu.control)

        async def drive():
            try:
                await until(lambda: app.root is not None and app.view is not None and app.frames > 5, 20)
                await fn(app, run, emu)
                run.check(f"{args.scenario}:no_io_on_ui_thread", not io.on_ui and io.elsewhere > 0,
                          f"on the UI thread: {io.on_ui[:5]}; elsewhere: {io.elsewhere}")
            except Exception:
                run.check("scenario:exception", False, traceback.format_exc())
            finally:
                run.save()
                app.stop()

        async def both():
            task = asyncio.ensure_future(drive())
            await app.async_run(async_lib="asyncio")
            await task

        asyncio.run(both())
    except Exception:
        run.check("scenario:exception", False, traceback.format_exc())
        code = 1
    finally:
        run.save()
        for r in readers:
            r.stop()
        emu.close()
    return code


if __name__ == "__main__":
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    sys.exit(main())
