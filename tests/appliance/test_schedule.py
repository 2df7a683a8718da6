"""Switch times: immediate, absolute, weekly; and what is due after time passes or jumps."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from appliance.clock import JST
from appliance.errors import ChangeRejected
from appliance.schedule import latest_due, next_occurrence, parse_switch, parse_switch_text, switch_to_wire

MON = datetime(2026, 11, 23, 0, 0, tzinfo=JST)  # a Monday


def test_wire_forms_round_trip():
    for wire in ("immediate", "2026-12-01T22:00:00+09:00", {"weekly": [{"day": "mon", "at": "22:00"},
                                                                      {"day": "fri", "at": "07:30"}]}):
        assert switch_to_wire(parse_switch(wire)) == wire


@pytest.mark.parametrize("bad, problem", [
    ("2026-12-01T22:00", "no UTC offset"),
    ("tomorrow", "neither 'immediate' nor"),
    ({"weekly": []}, "non-empty"),
    ({"weekly": [{"day": "funday", "at": "22:00"}]}, "switch.weekly[0].day"),
    ({"weekly": [{"day": "mon", "at": "25:00"}]}, "switch.weekly[0].at"),
    ({"daily": "x"}, "is not 'immediate'"),
    (42, "is not 'immediate'"),
])
def test_malformed_switch_times_are_rejected_by_name(bad, problem):
    with pytest.raises(ChangeRejected, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_switch(bad)


def test_weekly_next_and_latest_due():
    rule = parse_switch_text("weekly:mon@22:00,fri@07:00")
    assert next_occurrence(rule, MON) == MON + timedelta(hours=22)
    assert next_occurrence(rule, MON + timedelta(hours=22)) == MON + timedelta(days=4, hours=7)
    # nothing due before the first occurrence after the rule was stored
    assert latest_due(rule, MON + timedelta(hours=21), since=MON) is None
    assert latest_due(rule, MON + timedelta(hours=22), since=MON) == MON + timedelta(hours=22)
    # applied once: not due again until the next occurrence
    assert latest_due(rule, MON + timedelta(hours=23), since=MON + timedelta(hours=22)) is None
    # a meter off for 10 days applies only the latest occurrence it missed
    later = MON + timedelta(days=10, hours=12)  # Thursday of the next week, noon
    assert latest_due(rule, later, since=MON + timedelta(hours=22)) == MON + timedelta(days=7, hours=22)


def test_absolute_and_immediate_are_due_once():
    at = parse_switch("2026-11-24T10:00:00+09:00")
    assert latest_due(at, MON, None) is None
    assert latest_due(at, MON + timedelta(days=2), None) == at.at
    assert latest_due(at, MON + timedelta(days=2), since=at.at) is None
    now = parse_switch("immediate")
    assert latest_due(now, MON, None) == MON and latest_due(now, MON, since=MON) is None


def test_a_clock_stepped_back_does_not_repeat_an_occurrence():
    rule = parse_switch_text("weekly:mon@22:00")
    applied = MON + timedelta(hours=22)
    assert latest_due(rule, applied - timedelta(hours=1), since=applied) is None
    assert latest_due(rule, applied + timedelta(minutes=5), since=applied) is None
