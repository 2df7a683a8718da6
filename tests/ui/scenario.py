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
from ui.i18n import TEXTS  # noqa: E402
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
        if state == "reverse":  # the 売電 register shows while selling
            run.check("meter:export_register", meter.export_shown and meter.export_seg.opacity == 1 and
                      meter.flow_label.text == "売電中", f"{meter.flow_label.text} {meter.export_seg.text}")
        await shot(app, run, f"meter_{state}")
    await open_drawer(app)
    await tap(drawer.breaker)  # close the breaker again
    await tap(drawer.supply)  # a supply cut: 停電, not 無負荷
    await close_drawer(app)
    ok = await until(lambda: meter.flow_state == "supply_cut", 20)
    run.check("meter:supply_cut", ok and meter.flow_label.text == "停電", f"{meter.flow_state} {meter.flow_label.text}")
    await shot(app, run, "meter_supply_cut")
    await open_drawer(app)
    await tap(drawer.supply)
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

    await usage_yen(app, run)
    await tap(app.nav.tabs["panel"])

    # select slot 2: asks first; no switches on "cancel"; "switch" switches at once, in the core and on MQTT
    await tap(slots["2"].select)
    ok = await until(lambda: app.panel.confirm is not None and app.panel.confirm.is_open, 5)
    question = app.panel.confirm.question.text
    await shot(app, run, "panel_a_confirm")
    await tap(app.panel.confirm.no)
    await frames(app, 3)
    run.check("confirm:asks", ok and question == "ENEOSでんき に切り換えますか？" and not app.panel.confirm.is_open and
              supply_company(store) == "TEPCO-EP" and not store.changes(("pending",)), question)
    await tap(slots["2"].select)
    await until(lambda: app.panel.confirm.is_open, 5)
    await tap(app.panel.confirm.yes)
    ok_core = await until(lambda: supply_company(store) == "ENEOS-P", 15)
    ok_mqtt = await until(lambda: "contract_started" in events(emu, "ENEOS-P"), 15)
    ok_ended = await until(lambda: "contract_ended" in events(emu, "TEPCO-EP"), 15)
    ok_lit = await until(lambda: slots["2"].lit and not slots["1"].lit, 10)
    run.check("panel_a:select_switches_core", ok_core, f"supply={supply_company(store)}")
    run.check("panel_a:select_on_mqtt", ok_mqtt and ok_ended,
              f"ENEOS={events(emu, 'ENEOS-P')} TEPCO={events(emu, 'TEPCO-EP')}")
    run.check("panel_a:select_lights", ok_lit)
    # the notice turns to the past tense once the view shows ENEOS in force
    ok = await until(lambda: app.notice.shown == "ENEOSでんき に切り換えました", 10)
    run.check("confirm:done_tense", ok and app.notice.root.y + app.notice.root.height <= app.top.root.y + 1,
              app.notice.shown)
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
    await weekly_and_past(app, run, store, slots["3"])

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
    run.check("rejected:slot_reason", ok and TEXTS["refused_unregistered"][0] in slot_text, f"{prob} | {slot_text}")
    await shot(app, run, "panel_a_rejected")
    await tap(app.nav.tabs["alerts"])
    await frames(app, 3)
    run.check("rejected:alerts_reason", any(TEXTS["refused_unregistered"][0] in t for t in alert_texts(app)),
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
    await until(lambda: app.panel.confirm.is_open, 5)
    run.check("confirm:data_company", app.panel.confirm.question.text == "HEMSラボ へのデータ提供を開始しますか？",
              app.panel.confirm.question.text)
    await tap(app.panel.confirm.yes)
    run.check("notice:data_company", app.notice.shown == "HEMSラボ へのデータ提供を開始します", app.notice.shown)
    ok = ok and await until(lambda: "security_error" in events(emu, "HEMS-LAB"), 30)
    await tap(app.nav.tabs["alerts"])
    # worded from the screen's table (not the core's stored message), with the breaker's state
    ok_shown = await until(lambda: any("HEMS-LABからの確認がメーターの記録と合いませんでした" in t and "ブレーカー: 入" in t
                                       for t in alert_texts(app)), 10)
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
    ok = await until(lambda: "送信待ち" in app.top.link.text and "回線の確認中" in app.top.link.text, 10)
    run.check("backlog:shown_when_abnormal", ok, app.top.link.text)
    reasons = [TEXTS[k][0] for k in ("link_lost", "link_unreachable")]  # dropped, then not reachable
    ok = await until(lambda: any(r in t for t in alert_texts(app) for r in reasons), 15)
    run.check("alerts:link_reason", ok, str(alert_texts(app))[:300])
    await shot(app, run, "alerts")
    await open_drawer(app)
    await tap(drawer.broker)
    await close_drawer(app)
    ok = await until(lambda: app.view.link.connected and app.view.oldest_due is None, 30)
    run.check("backlog:hidden_when_normal", ok and "送信待ち" not in app.top.link.text and
              "未送信" not in app.top.link.text, f"{app.top.link.text} queued={app.view.queued}")

    usage = app.usage
    await tap(app.nav.tabs["usage"])
    ok = await until(lambda: any(v for v in usage.chart.values), 15)
    run.check("usage:today", ok and len(usage.chart.values) == 48, str(usage.chart.values))
    today_top = usage.chart.top_kwh
    run.check("usage:axis", app.usage.axis.text == "kWh/30分" and len(usage.chart.y_ticks) == 4 and
              today_top >= max(v or 0 for v in usage.chart.values), f"top={today_top} ticks={usage.chart.y_ticks}")
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
    run.check("usage:shared_axis", usage.chart.top_kwh == today_top and usage.chart.y_ticks[-1] == today_top,
              f"today {today_top}, earlier {usage.chart.top_kwh}")
    run.check("usage:vs_day_before", "合計" in usage.total.text and "kWh" in usage.total.text, usage.total.text)
    await shot(app, run, "usage_earlier")
    for _ in range(2):
        await tap(usage.next)
    run.check("usage:back_to_today", await until(lambda: usage.day == today, 5), str(usage.day))

    await check_sizes(app, run)
    await tour(app, run, "a")
    await tap(app.top.lang)
    await tap(app.nav.tabs["meter"])
    run.check("language:english", app.nav.tabs["meter"].text == "Meter", app.nav.tabs["meter"].text)
    await tour(app, run, "a")
    await tap(app.top.lang)
    store.close()


async def tour(app, run, panel):
    """A screenshot of every screen, dialog and the drawer, in the language shown."""
    from ui.shell import TABS

    lang = app.tx.lang
    for name, _ in TABS:
        await tap(app.nav.tabs[name])
        await shot(app, run, f"{'panel_' + panel if name == 'panel' else name}_{lang}")
    if panel == "a":
        await tap(app.nav.tabs["panel"])
        await tap(app.panel.slots["3"].set_time)
        if await until(lambda: app.panel.datetime.is_open, 5):
            await shot(app, run, f"datetime_{lang}")
            await tap(app.panel.datetime.back)
    await open_drawer(app)
    await shot(app, run, f"drawer_{lang}")
    await close_drawer(app)


async def check_sizes(app, run):
    """Touch targets of at least 48 px and status text of at least 16 px at 800x480; the active
    alerts tab's text has a contrast of at least 4.5:1."""
    from ui.widgets import MIN_CONTRAST, contrast

    small = {name: (round(w.width), round(w.height)) for name, w in (
        ("language", app.top.lang), ("prev_day", app.usage.prev), ("next_day", app.usage.next),
        ("notice_close", app.notice.close), ("drawer_close", app.drawer.close))
        if min(w.width, w.height) < 48}
    run.check("sizes:touch_targets", not small, str(small))
    run.check("sizes:status_text", min(app.top.link.font_size, app.notice.text.font_size, app.top.clock.font_size) >= 16)
    await tap(app.nav.tabs["alerts"])
    await frames(app, 2)
    tab = app.nav.tabs["alerts"]
    ratios = [contrast(tab.color, tab.background_color)]
    await tap(app.nav.tabs["meter"])
    await frames(app, 2)
    ratios.append(contrast(tab.color, tab.background_color))
    run.check("sizes:alerts_tab_contrast", min(ratios) >= MIN_CONTRAST, str(ratios))


async def usage_yen(app, run):
    """With 従量電灯B in force the day's estimate is in yen; a touched bar tells its half hour."""
    usage = app.usage
    await tap(app.nav.tabs["usage"])
    await until(lambda: any(v for v in usage.chart.values) and "円" in usage.yen.text, 15)
    run.check("usage:yen_estimate", "円" in usage.yen.text and "従量電灯B" in usage.yen.text, usage.yen.text)
    i = max(range(48), key=lambda k: usage.chart.values[k] or 0)
    chart = usage.chart
    bw = (chart.width - chart.gutter) / 48
    from kivy.tests.common import UnitTestTouch

    x, y = chart.to_window(chart.x + chart.gutter + bw * (i + 0.5), chart.y + chart.height / 2)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    touch.touch_up()
    await frames(app, 3)
    run.check("usage:touched_bar", chart.selected == i and "kWh" in usage.detail.text and "円" in usage.detail.text,
              f"bar {i} selected {chart.selected}: {usage.detail.text}")
    await shot(app, run, "usage_touched")


async def weekly_and_past(app, run, store, column):
    """The date-time dialog: a weekly rule from the panel is the CLI's rule; a past date-time is
    refused in plain words, in the language shown, until closed."""
    from appliance.schedule import parse_switch_text

    await tap(column.set_time)
    await until(lambda: app.panel.datetime.is_open, 5)
    picker = app.panel.datetime
    run.check("sizes:datetime_buttons", min(min(b.width, b.height) for st in (picker.day, picker.hour, picker.minute)
                                            for b in (st.minus, st.plus)) >= 48)
    await tap(picker.weekly)
    for d in (0, 2):  # Monday and Wednesday
        await tap(picker.weekdays[d])
    await tap(picker.hour.plus)
    at = picker.value.strftime("%H:%M")
    await shot(app, run, "panel_a_weekly")
    await tap(picker.ok)
    want = parse_switch_text(f"weekly:mon@{at},wed@{at}")
    ok = await until(lambda: any(ch.company.code == "LOOOP" and ch.switch == want
                                 for ch, _ in store.changes(("pending",))), 10)
    run.check("schedule:weekly_from_panel", ok and await until(lambda: "毎週" in column.when.text, 5),
              f"{[(c.company.code, c.switch) for c, _ in store.changes(('pending',))]} | {column.when.text}")
    # a past date-time: refused, worded from the table with the next step, over nothing
    await tap(column.set_time)
    await until(lambda: app.panel.datetime.is_open, 5)
    picker = app.panel.datetime
    await tap(picker.once)
    for _ in range(2):
        await tap(picker.day.minus)
    await tap(picker.ok)
    ok = await until(lambda: app.notice.shown == TEXTS["refused_past"][0], 10)
    still = any(ch.company.code == "LOOOP" and ch.switch == want for ch, _ in store.changes(("pending",)))
    run.check("notice:past_refused", ok and still, f"{app.notice.shown} | weekly kept: {still}")
    await shot(app, run, "panel_a_refused")
    await tap(app.top.lang)
    run.check("notice:follows_language", await until(lambda: app.notice.shown == TEXTS["refused_past"][1], 3),
              app.notice.shown)
    await tap(app.top.lang)
    await tap(app.notice.close)
    run.check("notice:dismissed", await until(lambda: app.notice.root.height == 0 and not app.notice.shown, 3))


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
    dy = scroll.height * 1.2
    await drag(scroll, dy)
    await frames(app, 5)
    run.check("panel_b:scrolls", ok and hidden_before and scroll.scroll_y < 1 and visible_in(last, scroll) and
              panel.picker.highlight == highlight,  # a drag scrolls; it does not pick the entry under the finger
              f"entries={len(panel.picker.entries)} hidden_before={hidden_before} scroll_y={scroll.scroll_y:.2f} "
              f"dragged={dy:.0f}px")
    await shot(app, run, "panel_b_scrolled")
    # the two kinds under their headings; Select keeps the highlight in view as it moves down the list
    companies = panel.companies
    order = [w for w in reversed(companies.list.children)]
    power, data = companies.headers["supply"], companies.headers["data"]
    hems = next(i for i, e in enumerate(panel.picker.entries) if e["code"] == "HEMS-LAB")
    run.check("panel_b:grouped", power.text == "電力会社（電気の購入先）" and data.text.startswith("データ利用会社") and
              order.index(power) < order.index(data) < order.index(companies.items[hems]) and
              all(order.index(companies.items[i]) < order.index(data) for i, e in enumerate(panel.picker.entries)
                  if e["kind"] == "supply"), str([getattr(w, "text", "")[:12] for w in order]))
    await drag(scroll, -scroll.height * 2)  # back to the top
    await asyncio.sleep(1.0)  # the list settles after the flick
    seen = []
    for _ in range(len(panel.picker.entries)):
        await tap(panel.select)
        await frames(app, 4)
        seen.append(visible_in(companies.items[panel.picker.highlight], scroll))
    run.check("panel_b:scroll_follows", all(seen), str(seen))
    while panel.picker.highlight != hems:
        await tap(panel.select)
    await frames(app, 4)
    await shot(app, run, "panel_b_data_company")
    await tap(panel.ok)
    run.check("panel_b:data_announced", app.notice.shown == "HEMSラボ へのデータ提供を開始します", app.notice.shown)
    ok = await until(lambda: app.notice.shown == "HEMSラボ へのデータ提供を開始しました", 20)
    run.check("panel_b:data_started", ok, app.notice.shown)
    await tour(app, run, "b")
    await tap(app.top.lang)
    await tour(app, run, "b")
    await tap(app.top.lang)
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
