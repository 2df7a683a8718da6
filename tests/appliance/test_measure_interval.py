"""A contract's own measurement interval (JP5159864B2, contract data 56A): the company receives the
meter's base readings aggregated into its windows, each base reading exactly once, in order."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from appliance.datatypes import parse_data_types
from appliance.domain import Action, Company, Contract, ContractChange, Role
from appliance.errors import ChangeRejected
from appliance.intake import accept_change
from appliance.schedule import parse_switch_text
from appliance.trust import issue_document, to_change, verify_document
from appliance.trust.document import ContractDocument
from core_kit import START, Registry, SteadyChip, core

HALF_HOUR, HOUR = timedelta(minutes=30), timedelta(hours=1)


def at(hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return START + timedelta(hours=h, minutes=m)


def commission(service):
    service.commission((Contract(Role.SUPPLY, Company("A", "A社"), parse_data_types("time,energy"), HALF_HOUR),
                        Contract(Role.DATA, Company("D", "D社"), parse_data_types("time,power,energy"), HALF_HOUR,
                                 menu="見える化", measure_interval=HOUR)))


def run_to(service, clock, chip, until: str, power: dict[str, float] | None = None):
    """Step every 30 min up to ``until``, setting the load at the given times."""
    while clock.now() <= at(until):
        if power and clock.now().strftime("%H:%M") in power:
            chip.set_power(power[clock.now().strftime("%H:%M")])
        service.step()
        if clock.now() == at(until):
            return
        clock.advance(HALF_HOUR)


def test_hourly_company_gets_sums_and_means_of_half_hour_readings_once_across_a_restart(tmp_path, clock):
    chip = SteadyChip(clock, 600.0)
    service, uplink = core(tmp_path, clock, chip=chip)
    commission(service)
    run_to(service, clock, chip, "00:30")
    service.store.close()  # a restart inside D's first hour: the open window survives it
    service, _ = core(tmp_path, clock, chip=chip, uplink=uplink)
    clock.advance(HALF_HOUR)
    run_to(service, clock, chip, "02:00", power={"01:00": 1000.0, "01:30": 400.0})
    a, d = uplink.on("/A/meters/MTR-K1/data"), uplink.on("/D/meters/MTR-K1/data")
    assert [p["energy_wh"] for p in a] == [300.0, 300.0, 500.0, 200.0]  # the base readings, unchanged
    assert [(p["interval_start"][11:16], p["interval_end"][11:16], p["energy_wh"], p["power_w"]) for p in d] == [
        ("00:00", "01:00", 600.0, 600.0), ("01:00", "02:00", 700.0, 700.0)]
    assert [p["seq"] for p in d] == [a[1]["seq"], a[3]["seq"]]  # the window's last reading: dedup still holds
    assert all(set(p) == {"meter_id", "company_code", "seq", "interval_start", "interval_end", "power_w",
                          "energy_wh", "menu"} for p in d)


def test_a_window_cut_short_by_the_contract_ending_goes_out_then_nothing_more(tmp_path, clock):
    chip = SteadyChip(clock, 800.0)
    service, uplink = core(tmp_path, clock, chip=chip)
    commission(service)
    accept_change(service.store, service.sender,
                  ContractChange(Role.DATA, Action.ABOLISH, Company("D", "D社"), parse_switch_text(
                      "2026-11-23T01:15:00+09:00")), clock.now(), HALF_HOUR)
    run_to(service, clock, chip, "01:00")
    clock.advance(timedelta(minutes=15))
    service.step()  # 01:15: the switch closes the running window, then ends D's contract
    clock.advance(timedelta(minutes=15))
    run_to(service, clock, chip, "03:00")
    d = uplink.on("/D/meters/MTR-K1/data")
    assert [(p["interval_start"][11:16], p["interval_end"][11:16], p["energy_wh"]) for p in d] == [
        ("00:00", "01:00", 800.0), ("01:00", "01:15", 200.0)]
    assert len({p["seq"] for p in d}) == 2


def test_the_measure_interval_is_a_multiple_of_the_meter_s_and_travels_in_the_signed_document(tmp_path, clock):
    service, _ = core(tmp_path, clock)
    change = ContractChange(Role.DATA, Action.CONTRACT, Company("D", "D社"), parse_switch_text("immediate"),
                            parse_data_types("energy"), measure_interval=timedelta(minutes=45))
    with pytest.raises(ChangeRejected, match="measure_interval: .* not a multiple"):
        accept_change(service.store, service.sender, change, clock.now(), HALF_HOUR)
    registry = Registry()
    d = registry.certify("D", Role.DATA)
    doc = ContractDocument(kind=Role.DATA, action=Action.CONTRACT, company=Company("D", "D社"),
                           data_types=parse_data_types("time,energy"), switch=parse_switch_text("immediate"), serial=1,
                           issued_at=clock.now(), expires_at=clock.now() + timedelta(days=1),
                           measure_interval=timedelta(hours=2))
    raw = issue_document(doc, company_key=d.key, certificate=d.cert)
    verified = verify_document(raw, root_public_key=registry.public, meter_id="MTR-K1", now=clock.now(),
                               last_serial=lambda _c: None)
    change_id = accept_change(service.store, service.sender, to_change(verified, "card:1"), clock.now(), HALF_HOUR)
    assert service.store.change(change_id)[0].measure_interval == timedelta(hours=2)
    service.step()
    (contract,) = service.store.contracts()
    assert contract.measure_interval == timedelta(hours=2)
