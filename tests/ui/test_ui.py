"""The touch screen under Xvfb, driven by touch events, against a meter built from real parts.

Each scenario runs in its own process (one Kivy window per process) and records its checks; the
tests here assert them. Screenshots of every screen go to artifacts/screenshots/ui/.
"""
from __future__ import annotations

import pytest
from uikit import SCREENSHOTS, run_scenarios


@pytest.fixture(scope="module")
def panel_a(xvfb, tmp_path_factory):
    return run_scenarios(xvfb, ["panel_a"], tmp_path_factory.mktemp("panel_a"))


@pytest.fixture(scope="module")
def panel_b(xvfb, tmp_path_factory):
    return run_scenarios(xvfb, ["panel_b", "panel_b_restart"], tmp_path_factory.mktemp("panel_b"))


def expect(results: dict, *names: str) -> None:
    crashed = results.get("scenario:exception")
    assert crashed is None, crashed["detail"]
    for name in names:
        assert name in results, f"{name} was not reached; log:\n{results['_log']['detail']}"
        assert results[name]["ok"], f"{name}: {results[name]['detail']}"


@pytest.mark.parametrize("state", ["forward", "no_load", "reverse", "breaker_open"])
def test_fig7_marks(panel_a, state):
    """Forward blinks / both lit / reverse blinks / both blink, seen over a second of frames."""
    expect(panel_a, f"marks:{state}", f"screenshot:meter_{state}")


def test_select_card_switches_contract_in_core_and_on_mqtt(panel_a):
    expect(panel_a, "cards:read", "panel_a:lit_in_force", "panel_a:select_switches_core",
           "panel_a:select_on_mqtt", "panel_a:select_lights")


def test_schedule_switch_by_date_time(panel_a):
    """The picker starts from the meter's clock: the scenario runs the meter's clock ahead of the wall's."""
    expect(panel_a, "panel_a:unset_grey", "schedule:picker_on_meter_clock", "schedule:pending_in_core",
           "schedule:time_from_buttons", "schedule:display_set", "schedule:on_mqtt", "schedule:not_yet_switched")


def test_rejected_card_shows_reason(panel_a):
    expect(panel_a, "rejected:slot_reason", "rejected:alerts_reason")


def test_alerts_link_lost_and_security(panel_a):
    """The security error comes from the real confirmation flow: a company server spoofing its record."""
    expect(panel_a, "alerts:link_lost_queued", "alerts:link_reason", "alerts:security", "alerts:security_in_core")


def test_usage_scrolls_to_earlier_days_the_store_holds(panel_a):
    expect(panel_a, "usage:today", "usage:earlier_days", "usage:back_to_today")


def test_language_toggle(panel_a):
    expect(panel_a, "language:english")


def test_card_select_asks_first_and_tells_when_done(panel_a):
    """切り換えますか？ first (cancel leaves the contract alone); the notice reads 切り換えました only
    once the meter shows the switch; a data company is asked and told about data, not a switch."""
    expect(panel_a, "confirm:asks", "confirm:done_tense", "confirm:data_company", "notice:data_company")


def test_refusal_in_plain_words_follows_language_and_closes(panel_a):
    expect(panel_a, "notice:past_refused", "notice:follows_language", "notice:dismissed")


def test_weekly_rule_from_the_panel_is_the_clis(panel_a):
    expect(panel_a, "sizes:datetime_buttons", "schedule:weekly_from_panel")


def test_usage_axis_shared_scale_bar_value_and_yen(panel_a):
    expect(panel_a, "usage:axis", "usage:shared_axis", "usage:vs_day_before", "usage:yen_estimate", "usage:touched_bar")


def test_household_words_export_register_and_power_cut(panel_a):
    expect(panel_a, "meter:export_register", "meter:supply_cut")


def test_backlog_only_when_abnormal(panel_a):
    expect(panel_a, "backlog:shown_when_abnormal", "backlog:hidden_when_normal")


def test_touch_targets_text_size_and_contrast(panel_a):
    expect(panel_a, "sizes:touch_targets", "sizes:status_text", "sizes:alerts_tab_contrast")


def test_panel_b_select_ok_cancel(panel_b):
    expect(panel_b, "panel_b:list", "panel_b:original_highlighted", "panel_b:select_moves",
           "panel_b:cancel_restores", "panel_b:cancel_no_change",
           "panel_b:touch_highlights", "panel_b:touch_then_cancel", "panel_b:ok_switches_core", "panel_b:ok_on_mqtt",
           "panel_b:ok_becomes_original", "panel_b:scrolls", "panel_b:grouped", "panel_b:scroll_follows",
           "panel_b:data_announced", "panel_b:data_started")


def test_panel_b_list_survives_a_restart(panel_b):
    expect(panel_b, "panel_b_restart:list_restored", "panel_b_restart:in_force_highlighted",
           "panel_b_restart:stored_entry_switches")


def test_no_io_on_the_ui_thread(panel_a, panel_b):
    """Every store statement and emulation call the app made ran on its worker, none on the UI thread."""
    expect(panel_a, "panel_a:no_io_on_ui_thread")
    expect(panel_b, "panel_b:no_io_on_ui_thread", "panel_b_restart:no_io_on_ui_thread")


@pytest.mark.parametrize("size", ["1024x600", "1280x720"])
def test_other_screen_sizes(xvfb, tmp_path_factory, size):
    results = run_scenarios(xvfb, ["sizes"], tmp_path_factory.mktemp("sizes"), size=size)
    expect(results, f"screenshot:meter_{size}", f"screenshot:panel_{size}", f"screenshot:contracts_{size}")


def test_screenshots_of_every_screen(panel_a, panel_b):
    for lang in ("ja", "en"):
        for name in ("meter", "usage", "panel_a", "panel_b", "contracts", "alerts", "drawer", "datetime"):
            assert (SCREENSHOTS / f"{name}_{lang}.png").stat().st_size > 5000, (name, lang)
