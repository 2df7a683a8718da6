"""The demo's live terminal view: what the meter measures, its contracts, and what each company's
server received, which is the demo's point: every company gets exactly its contracted data types.

Rendered with ``rich``. Log lines go through the live display's own console while it runs, so a
log line never leaves pieces of an old frame behind.
"""
from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.logging import RichHandler
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from appliance.clock import JST
from appliance.datatypes import NAMES

TIME_FIELDS = ("interval_start", "interval_end")
ROLE = {"supply": "power company 電力会社", "data": "data company データ利用会社"}
SHOWN_EVENTS = 4  # the newest events per company, oldest first


def flow(power_w: float | None) -> str:
    """What a household calls the direction of flow."""
    if power_w is None:
        return "not measured yet 計測待ち"
    if power_w > 5:
        return "buying from the grid 買電"
    if power_w < -5:
        return "selling to the grid 売電"
    return "no load 無負荷"


def value(x: Any, unit: str) -> str:
    return "—" if x is None else f"{x:,} {unit}" if isinstance(x, int) else f"{x:,.1f} {unit}"


def payload_lines(last: dict[str, Any] | None) -> Text:
    """A company's last payload, one field per line, nothing cut: the proof it got only its types."""
    if not last:
        return Text("nothing yet", style="dim")
    body = {k: v for k, v in last.items() if k not in ("meter_id", "company_code")}
    lines = []
    if all(k in body for k in TIME_FIELDS):
        start, end = (str(body.pop(k))[11:16] for k in TIME_FIELDS)
        lines.append(f"window {start}–{end}")
    lines += [f"{k} = {v}" for k, v in body.items()]
    return Text("\n".join(lines))


def render(s: dict, system) -> Group:
    v = s["view"]
    r = v.last_reading or {}
    link = v.link
    connected = link is not None and link.connected
    head = Text.assemble(
        ("スマートメーター デモ  ", "bold"), f"meter {v.meter_id}   ",
        f"simulated time {v.now.astimezone(JST):%Y-%m-%d %H:%M} JST (x{system.speed:g})   ",
        ("connected to the broker" if connected else f"not connected: {link.detail if link else 'starting'}",
         "green" if connected else "red"))
    p = r.get("power_w")
    measured = Table.grid(padding=(0, 3))
    measured.add_column(no_wrap=True)
    measured.add_column()
    measured.add_column()
    measured.add_row(f"power {value(p, 'W')}  ({flow(p)})",
                     f"energy this interval {value(r.get('energy_wh'), 'Wh')}",
                     f"sold this interval {value(r.get('export_wh'), 'Wh')}")
    measured.add_row(f"voltage {value(r.get('voltage_v'), 'V')}", f"current {value(r.get('current_a'), 'A')}",
                     f"frequency {value(r.get('frequency_hz'), 'Hz')}")
    measured.add_row(f"bought in total {value(r.get('import_wh_total'), 'Wh')}",
                     f"sold in total {value(r.get('export_wh_total'), 'Wh')}",
                     f"reading no. {r.get('seq', '—')}, waiting to send {v.queued}")
    contracts = Table("", "company", "data it receives", "tariff / when", expand=True)
    for c in v.in_force:
        contracts.add_row(f"in force: {ROLE[c.role.value]}", f"{c.company.name} ({c.company.code})",
                          ", ".join(NAMES[t.value][1] for t in c.data_types), c.menu or "")
    for pnd in v.pending:
        contracts.add_row(Text(f"waiting: {pnd.action.value}", style="yellow"), f"{pnd.company.name} ({pnd.company.code})",
                          ", ".join(NAMES[t.value][1] for t in pnd.data_types), pnd.switch_text)
    contracted = {c.company.code: ", ".join(t.value for t in c.data_types) for c in v.in_force}
    who = Table(expand=True)
    who.add_column("company", no_wrap=True)
    who.add_column("readings", no_wrap=True)
    who.add_column("contracted data types", ratio=1)
    who.add_column("its last message, as received", no_wrap=True)  # the demo's point: never cut
    who.add_column("latest events", ratio=1)
    for code, x in s["received"].items():
        dup = x["summary"].duplicates
        who.add_row(code, f"{x['count']}" + (f"\n(+{dup} repeats dropped)" if dup else ""),
                    contracted.get(code, Text("no contract now", style="dim")), payload_lines(x["last"]),
                    "\n".join(x["events"][-SHOWN_EVENTS:]))
    return Group(head,
                 Panel(measured, title="What the meter measures now (計測値)"),
                 Panel(contracts, title="Contracts in force and waiting (契約)"),
                 Panel(who, title="What each company received: exactly its contracted data types (各社の受信データ)"))


def run_live(snapshot, system, deadline: float | None, running) -> None:
    """Redraw twice a second until ``running()`` is false or the deadline passes."""
    console = Console()
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [RichHandler(console=console, show_path=False, log_time_format="%H:%M:%S")]
    try:
        with Live(render(snapshot(system), system), console=console, refresh_per_second=2) as live:
            while running() and (deadline is None or time.monotonic() < deadline):
                time.sleep(0.5)
                live.update(render(snapshot(system), system))
    finally:
        root.handlers = saved
