"""``MeterAPI.view()`` hands out typed, frozen views; ``contract list --json`` keeps its exact form."""
from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import pytest

from appliance.api import AlertView, ContractView, MeterAPI, PendingChangeView, contract_overview
from appliance.clock import JST, ManualClock
from appliance.datatypes import DataType
from appliance.domain import Action, Company, Contract, ContractChange, Role, SwitchTime, WeeklySlot
from appliance.interfaces import BreakerState
from appliance.schedule import parse_switch_text
from appliance.store import Store
from appliance.uplink import LinkState

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=JST)
TEPCO = Company("TEPCO-EP", "東京電力EP", "mqtt://tepco")


@pytest.fixture
def api(tmp_path):
    api = MeterAPI(Store(tmp_path / "meter.db"), "MTR-1", timedelta(minutes=30), ManualClock(NOW))
    yield api
    api.store.close()


def test_the_view_is_typed(api):
    store = api.store
    store.put_contract(Contract(Role.SUPPLY, TEPCO, (DataType.TIME, DataType.ENERGY), timedelta(minutes=30), "従量電灯B",
                                NOW - timedelta(days=3)))
    api.submit_change(ContractChange(Role.DATA, Action.CONTRACT, Company("HEMS-LAB", "HEMSラボ"),
                                     SwitchTime(at=NOW + timedelta(hours=2)), (DataType.POWER,), source="cli"))
    store.raise_alert(NOW, "security_error", "spoofed", "なりすまし", "HEMS-LAB",
                      breaker={"closed": True, "reason": ""})
    store.raise_alert(NOW, "security_error", "spoofed", "なりすまし", "HEMS-LAB", breaker="open")
    store.raise_alert(NOW, "card_rejected", "bad card", "不正なカード", None, code="x")
    store.set_meta("link", {"connected": False, "detail": "broker down"})
    store.set_meta("breaker", BreakerState(closed=False, reason="confirmation failed").to_json())

    v = api.view()
    assert v.now == NOW and v.last_reading is None and v.queued >= 0
    assert v.in_force == (ContractView(Role.SUPPLY, TEPCO, (DataType.TIME, DataType.ENERGY), "従量電灯B",
                                       timedelta(minutes=30), NOW - timedelta(days=3)),)
    p, = v.pending
    assert isinstance(p, PendingChangeView) and (p.kind, p.action, p.company.code, p.data_types) == (
        Role.DATA, Action.CONTRACT, "HEMS-LAB", (DataType.POWER,))
    assert p.switch.at == NOW + timedelta(hours=2) and p.switch_text == "2026-11-23 11:00 JST"
    assert all(isinstance(a, AlertView) for a in v.alerts)
    assert [(a.kind, a.breaker_open) for a in v.alerts] == [  # newest first
        ("card_rejected", None), ("security_error", True), ("security_error", False)]
    assert v.alerts[-1].message_ja == "なりすまし" and v.alerts[-1].company_code == "HEMS-LAB"
    assert v.link == LinkState(False, "broker down")
    assert v.breaker == BreakerState(closed=False, reason="confirmation failed")
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.in_force[0].menu = "夜"


def test_a_new_meter_has_no_link_or_breaker_state_yet(api):
    v = api.view()
    assert (v.in_force, v.pending, v.alerts, v.link, v.breaker) == ((), (), (), None, None)


def test_the_overview_as_json_keeps_the_cli_form(api):
    api.store.put_contract(Contract(Role.SUPPLY, TEPCO, (DataType.TIME,), timedelta(minutes=30), None,
                                    datetime(2026, 1, 2, 3, 4, tzinfo=JST)))
    change_id = api.submit_change(ContractChange(Role.SUPPLY, Action.CONTRACT, Company("ENEOS-P", "ENEOSでんき"),
                                                 parse_switch_text("weekly:fri@18:00"), (DataType.ENERGY,),
                                                 source="cli"))
    api.store.mark_applied(change_id, datetime(2026, 11, 20, 18, 0, tzinfo=JST), "pending", "weekly")
    assert contract_overview(api.store).to_json() == {
        "in_force": [{"role": "supply", "company": "TEPCO-EP", "name": "東京電力EP", "server": "mqtt://tepco",
                      "data_types": ["time"], "menu": None, "send_interval_s": 1800.0,
                      "since": "2026-01-02T03:04:00+09:00", "measure_interval_s": None}],
        "pending": [{"id": change_id, "kind": "supply", "action": "contract", "company": "ENEOS-P",
                     "name": "ENEOSでんき", "switch": "weekly fri 18:00", "data_types": ["energy"], "menu": None,
                     "source": "cli", "last_applied": "2026-11-20T18:00:00+09:00", "measure_interval_s": None}]}
    json_form = contract_overview(api.store).to_json()
    assert list(json_form["in_force"][0]) == ["role", "company", "name", "server", "data_types", "menu",
                                              "send_interval_s", "since", "measure_interval_s"]
    assert list(json_form["pending"][0]) == ["id", "kind", "action", "company", "name", "switch", "data_types",
                                             "menu", "source", "last_applied", "measure_interval_s"]


def test_the_contract_state_goes_out_once_per_change_and_passes_the_wire_contract(api):
    """What the customer's page shows (embodiment 3) is what the meter holds, published whole on each change."""
    import json

    from appliance.contract_state import ContractStatePublisher
    from appliance.wire import ContractState, decode

    def published():
        return [r for r in api.store.released(NOW, 0, 100) if r.topic == "meters/MTR-1/contracts"]

    publisher = ContractStatePublisher(api.store, "MTR-1")
    api.store.put_contract(Contract(Role.SUPPLY, TEPCO, (DataType.TIME, DataType.ENERGY), timedelta(minutes=30),
                                    "従量電灯B", NOW - timedelta(days=3)))
    assert publisher.publish_if_changed(NOW) and not publisher.publish_if_changed(NOW)
    api.submit_change(ContractChange(Role.SUPPLY, Action.CONTRACT, Company("ENEOS-P", "ENEOSでんき"),
                                     SwitchTime(weekly=(WeeklySlot(4, "18:00"),)), (DataType.ENERGY,), source="remote"))
    assert publisher.publish_if_changed(NOW)
    first, second = (decode(r.payload, ContractState) for r in published())
    assert (first.version, second.version) == (1, 2)
    assert [c.company for c in second.in_force] == ["TEPCO-EP"] and second.pending[0].company == "ENEOS-P"
    assert json.loads(published()[1].payload)["pending"][0]["switch"] == {"weekly": [{"day": "fri", "at": "18:00"}]}
