"""The switchable meter end to end: emulated chip over Modbus TCP, real Mosquitto, simulated time."""
from __future__ import annotations

from datetime import timedelta

import pytest

from appliance.errors import ChangeRejected
from meter_rig import HALF_HOUR, METER, GridOperator, data, supply, wait_for

ALL_FIELDS = {"meter_id", "seq", "interval_start", "interval_end", "quality", "power_w", "energy_wh", "export_wh",
              "voltage_v", "current_a", "power_factor", "frequency_hz", "import_wh_total", "export_wh_total"}


def test_only_contracted_fields_reach_each_company(rig, broker):
    grid = GridOperator(broker)
    rig.commission(supply("A", "time,power,energy,totals"), data("D", "energy,voltage"))
    rig.run(6)
    rig.drain()
    a, d = rig.received("A"), rig.received("D")
    assert len(a) == len(d) == 6
    assert all(set(p) == {"meter_id", "company_code", "seq", "interval_start", "interval_end", "power_w",
                          "energy_wh", "import_wh_total", "export_wh_total"} for p in a)
    assert all(set(p) == {"meter_id", "company_code", "seq", "energy_wh", "voltage_v"} for p in d)
    assert rig.companies["B"].data() == []  # no contract, nothing
    wait_for(lambda: len(grid.seqs) == 6, what="grid operator readings")
    assert all(set(b) == ALL_FIELDS for b in grid.bodies)  # metering for settlement: every field
    # the values are the meter's own readings, seq for seq
    stored = {r["seq"]: r for r in rig.store.readings()}
    for p in a:
        assert p["energy_wh"] == stored[p["seq"]]["energy_wh"] and p["energy_wh"] > 0
    grid.stop()


def test_the_same_service_over_modbus_rtu_on_a_pty_pair(tmp_path, broker, clock, pty_pair):
    from meter_rig import Rig

    rig = Rig(tmp_path, broker, clock, profile="pzem004t", rtu=pty_pair)
    try:
        rig.commission(supply("A", "time,power,energy,totals"))
        rig.run(4)
        rig.drain()
        got = rig.received("A")
        assert [p["seq"] for p in got] == [1, 2, 3, 4]
        assert all(p["energy_wh"] > 0 and p["export_wh_total"] is None for p in got)  # a PZEM has no export register
        assert rig.chip.counters.transactions == 5  # one block read per sample (the first sets the base)
    finally:
        rig.close()


def test_energy_is_exact_across_windows_and_matches_the_registers(rig):
    rig.commission(supply("A", "energy,totals"))
    rig.run(48)  # one simulated day
    readings = rig.store.readings()
    assert len(readings) == 48 and [r["seq"] for r in readings] == list(range(1, 49))
    total = sum(r["energy_wh"] for r in readings)
    first_base = readings[0]["import_wh_total"] - readings[0]["energy_wh"]
    assert total == pytest.approx(readings[-1]["import_wh_total"] - first_base, abs=0.01)
    exported = sum(r["export_wh"] for r in readings)
    assert exported > 0  # the SDM profile's household has solar: reverse flow at noon
    assert any(r["power_w"] < 0 for r in readings)


def test_weekly_schedule_switches_two_power_companies_without_gap_or_overlap(rig):
    rig.commission(supply("A"))
    rig.change("supply", "contract", "B", "weekly:sat@00:00", "time,energy")  # B at the weekend
    rig.change("supply", "contract", "A", "weekly:mon@00:00", "time,power,energy")  # A on weekdays
    rig.run(48 * 8)  # Monday 00:00 .. the next Tuesday
    rig.drain()
    a = {p["seq"] for p in rig.received("A")}
    b = {p["seq"] for p in rig.received("B")}
    seqs = {r["seq"] for r in rig.store.readings()}
    assert a | b == seqs and not a & b  # every reading has exactly one power company
    by_seq = {r["seq"]: r for r in rig.store.readings()}
    for seq in b:  # B's readings are exactly the weekend's windows
        assert by_seq[seq]["interval_start"][:10] in ("2026-11-28", "2026-11-29")
    weekend = [s for s, r in by_seq.items() if r["interval_start"][:10] in ("2026-11-28", "2026-11-29")]
    assert sorted(weekend) == sorted(b) and len(b) == 96
    ev_a = [e["event"] for e in rig.companies["A"].events()]
    ev_b = [e["event"] for e in rig.companies["B"].events()]
    assert ev_b == ["contract_scheduled", "contract_started", "contract_ended"]
    assert ev_a.count("contract_ended") == 1 and ev_a.count("contract_started") == 1  # Monday re-start
    assert "contract_ending" in ev_a


def test_contract_ending_is_announced_with_its_date_time(rig):
    rig.commission(supply("A"))
    rig.change("supply", "contract", "B", "2026-11-25T00:00:00+09:00", "time,energy")
    rig.drain()
    wait_for(lambda: rig.companies["A"].events() and rig.companies["B"].events(), what="the events")
    (ending,) = rig.companies["A"].events()
    assert ending["event"] == "contract_ending" and ending["switch_at"] == "2026-11-25T00:00:00+09:00"
    assert ending["successor"] == "B"
    (scheduled,) = rig.companies["B"].events()
    assert scheduled["event"] == "contract_scheduled" and scheduled["data_types"] == ["time", "energy"]


def test_abolition_and_menu_change(rig):
    rig.commission(supply("A", menu="従量電灯B"), data("D", "time,energy"))
    rig.change("data", "abolish", "D", "2026-11-23T03:00:00+09:00")
    rig.change("supply", "menu", "A", "2026-11-23T02:00:00+09:00", menu="夜トク8")
    rig.run(8)  # 00:00 .. 04:00
    rig.drain()
    d = rig.received("D")
    assert [p["interval_end"][11:16] for p in d] == ["00:30", "01:00", "01:30", "02:00", "02:30", "03:00"]
    a = rig.received("A")
    assert len(a) == 8
    # 56D carries the tariff menu each reading was measured under; a contract without one carries none
    assert [(p["interval_end"][11:16], p["menu"]) for p in a][3:5] == [("02:00", "従量電灯B"), ("02:30", "夜トク8")]
    assert all("menu" not in p for p in d)
    (a_contract,) = rig.store.contracts()
    assert a_contract.company.code == "A" and a_contract.menu == "夜トク8"
    events_a = [(e["event"], e.get("menu")) for e in rig.companies["A"].events()]
    assert ("menu_changed", "夜トク8") in events_a
    events_d = [(e["event"], e.get("reason")) for e in rig.companies["D"].events()]
    assert events_d == [("contract_ending", None), ("contract_ended", "abolished")]


def test_a_change_for_a_company_without_a_contract_is_void_not_applied(rig):
    rig.commission(supply("A"))
    cid = rig.change("data", "abolish", "NOPE", "immediate")
    rig.run(1)
    change, book = rig.store.change(cid)
    assert book["state"] == "void" and "no data contract in force" in book["note"]
    assert book["applied_count"] == 1  # attempted once, never retried
    assert [c.company.code for c in rig.store.contracts()] == ["A"]


def test_bad_changes_are_rejected_by_name_and_store_nothing(rig):
    rig.commission(supply("A"))
    before = (rig.store.contracts(), rig.store.changes(("pending", "done")), rig.store.outbox_size())
    with pytest.raises(ChangeRejected, match="is in the past"):
        rig.change("supply", "contract", "B", "2026-11-22T00:00:00+09:00", "time")
    with pytest.raises(ChangeRejected, match="at least one data type"):
        rig.change("data", "contract", "D", "immediate")
    with pytest.raises(ChangeRejected, match="company.code"):
        rig.change("data", "contract", "bad code!", "immediate", "time")
    with pytest.raises(ChangeRejected, match="must name the new menu"):
        rig.change("supply", "menu", "A", "immediate")
    assert (rig.store.contracts(), rig.store.changes(("pending", "done")), rig.store.outbox_size()) == before


def test_a_restart_neither_loses_nor_repeats_a_change(rig):
    rig.commission(supply("A"))
    rig.change("supply", "contract", "B", "2026-11-23T01:00:00+09:00", "time,energy")
    rig.run(3)
    rig.drain()
    rig.stop_service()
    rig.start_service()  # the same store, a new process's worth of objects
    rig.run(3)
    rig.drain()
    wait_for(lambda: len(rig.companies["B"].events()) >= 2, what="B's events")
    assert [e["event"] for e in rig.companies["B"].events()] == ["contract_scheduled", "contract_started"]
    assert [e["event"] for e in rig.companies["A"].events()] == ["contract_ending", "contract_ended"]
    assert {p["seq"] for p in rig.received("A")} | {p["seq"] for p in rig.received("B")} == set(range(1, 7))


def test_a_meter_off_across_a_switch_time_applies_it_late_once(rig):
    rig.commission(supply("A"))
    rig.change("supply", "contract", "B", "2026-11-23T02:00:00+09:00", "time,energy")
    rig.run(2)  # 00:00 .. 01:00 measured
    rig.stop_service()
    rig.clock.advance(timedelta(hours=3))  # off from 01:00 to 04:00, across the 02:00 switch
    rig.start_service()
    rig.run(1)
    rig.drain()
    readings = rig.store.readings()
    span = readings[2]
    assert span["interval_start"][11:16] == "01:00" and span["interval_end"][11:16] == "04:00"
    assert span["energy_wh"] > 0  # energy across the gap comes from the registers: nothing lost
    assert span["seq"] in {p["seq"] for p in rig.received("A")}  # measured under A's contract
    started = [e for e in rig.companies["B"].events() if e["event"] == "contract_started"]
    assert len(started) == 1
    assert started[0]["scheduled_at"].endswith("02:00:00+09:00") and started[0]["effective_at"][11:16] == "04:00"


def test_clock_jumps(rig):
    rig.commission(supply("A"))
    rig.change("supply", "contract", "B", "weekly:mon@03:00", "time,energy")
    rig.run(8)  # to 04:00; B applied at 03:00
    n = len(rig.store.readings())
    rig.clock.advance(timedelta(hours=-2))  # NTP steps the clock back two hours
    rig.run(4, HALF_HOUR)  # 02:00 .. 04:00 again: those windows were measured already
    assert len(rig.store.readings()) == n
    rig.run(2)
    seqs = [r["seq"] for r in rig.store.readings()]
    assert seqs == sorted(set(seqs))  # strictly increasing, never reused
    started = [e for e in rig.store.changes(("pending",)) if e[1]["applied_count"]]
    assert started[0][1]["applied_count"] == 1  # the 03:00 occurrence applied once, not twice
    rig.clock.advance(timedelta(days=7, hours=1))  # a jump forward over the next Monday 03:00
    rig.run(1)
    assert rig.store.changes(("pending",))[0][1]["applied_count"] == 2
    assert rig.store.readings()[-2]["energy_wh"] > 0  # the spanning reading kept the energy


def test_a_modbus_fault_gives_a_bad_reading_and_loses_no_energy(rig):
    rig.commission(supply("A", "energy"))
    rig.run(2)
    rig.emulator.faults.set("no_answer", 10)  # more than the driver's retries: the window fails
    rig.run(1)
    rig.emulator.faults.clear()
    rig.run(2)
    readings = rig.store.readings()
    bad = [r for r in readings if r["quality"] == "bad"]
    assert len(bad) == 1 and bad[0]["energy_wh"] is None and bad[0]["import_wh_total"] is None
    after = readings[readings.index(bad[0]) + 1]
    assert after["quality"] == "good"
    assert after["interval_start"] == readings[readings.index(bad[0]) - 1]["interval_end"]  # spans the bad window
    good = [r for r in readings if r["quality"] == "good"]
    base = good[0]["import_wh_total"] - good[0]["energy_wh"]
    assert sum(r["energy_wh"] for r in good) == pytest.approx(good[-1]["import_wh_total"] - base, abs=0.01)
    assert rig.chip.counters.timeouts >= 2


def test_broker_down_for_many_intervals_then_back(rig, broker):
    grid = GridOperator(broker)
    rig.commission(supply("A"), data("D", "time,energy"))
    rig.run(2)
    rig.drain()
    broker.stop()
    wait_for(lambda: not rig.uplink.state().connected, what="meter to notice")
    rig.run(96)  # two simulated days without a broker
    assert rig.store.outbox_size() >= 96 * 3
    broker.start()  # same port; the companies' sessions survive in the broker's persistence
    wait_for(lambda: rig.uplink.state().connected, timeout=40, what="meter to reconnect")
    rig.drain(timeout=40)
    n = len(rig.store.readings())
    assert n == 2 + 96
    assert sorted(p["seq"] for p in rig.received("A")) == list(range(1, n + 1))
    assert sorted(p["seq"] for p in rig.received("D")) == list(range(1, n + 1))
    grid.stop()


def test_credentials_refused_is_reported_and_readings_queue(broker, clock):
    import msgspec

    from appliance.mqtt import MqttUplink

    wrong = msgspec.structs.replace(broker.account("meter", METER), password="wrong")  # its own account, a bad password
    uplink = MqttUplink(METER, wrong.host, wrong.port, clock, settings=wrong)
    uplink.start()
    try:
        wait_for(lambda: "refused" in uplink.state().detail, what="refusal")
        assert not uplink.state().connected
        assert "Not authorized" in uplink.state().detail or "user name or password" in uplink.state().detail
    finally:
        uplink.stop()
