"""The demo's terminal view as a newcomer reads it at 100 columns: every field of each company's last
message shown whole (the demo's point), no "None", words instead of step numbers."""
from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

from rich.console import Console

from appliance.api import ContractView
from appliance.clock import JST
from appliance.datatypes import DataType
from appliance.domain import Company, Role
from smartmeter.demo_view import render

NOW = datetime(2026, 12, 6, 5, 49, tzinfo=JST)
PAYLOAD = {"meter_id": "DEMO-0001", "company_code": "TEPCO-EP", "seq": 19,
           "interval_start": "2026-12-06T05:48:00+09:00", "interval_end": "2026-12-06T05:49:00+09:00",
           "power_w": 258.0, "energy_wh": 4.3, "export_wh": 0.0, "import_wh_total": 61234.5, "export_wh_total": 812.0}


def draw(reading) -> str:
    tepco = ContractView(Role.SUPPLY, Company("TEPCO-EP", "東京電力EP"), (DataType.TIME, DataType.POWER, DataType.ENERGY,
                         DataType.EXPORT_ENERGY, DataType.TOTALS), "従量電灯B", timedelta(minutes=1), NOW)
    view = SimpleNamespace(meter_id="DEMO-0001", now=NOW, last_reading=reading, link=None, queued=0, in_force=(tepco,),
                           pending=())
    summary = SimpleNamespace(duplicates=0)
    snapshot = {"view": view, "received": {
        "TEPCO-EP": {"count": 19, "last": PAYLOAD, "events": ["contract_ending", "confirm_request"], "summary": summary},
        "LOOOP": {"count": 0, "last": None, "events": [], "summary": summary}}}
    console = Console(width=100, record=True, color_system=None)
    console.print(render(snapshot, SimpleNamespace(speed=60)))
    return console.export_text()


def test_each_companys_message_is_shown_whole_and_nothing_reads_none():
    text = draw({"power_w": -120.0, "export_wh": 2.0, "seq": 19})
    for field in ("power_w = 258.0", "energy_wh = 4.3", "export_wh = 0.0", "import_wh_total = 61234.5",
                  "export_wh_total = 812.0", "window 05:48–05:49"):
        assert field in text, field
    assert "None" not in text and "…" not in text
    assert "selling to the grid 売電" in text and "S80" not in text


def test_before_the_first_reading_it_says_so():
    text = draw(None)
    assert "not measured yet" in text and "None" not in text
