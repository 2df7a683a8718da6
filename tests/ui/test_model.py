"""The presenters without Kivy: card slots, the Fig. 9(b) picker, the Fig. 7 marks."""
from __future__ import annotations

import logging
import sys
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit: the card tests' PKI and documents

from cardkit import METER, Pki, new_pki  # noqa: E402

from appliance.api import ContractView, MeterAPI  # noqa: E402
from appliance.clock import JST, ManualClock  # noqa: E402
from appliance.datatypes import DataType  # noqa: E402
from appliance.domain import Action, Company, Role, SwitchTime  # noqa: E402
from appliance.interfaces import BreakerState  # noqa: E402
from appliance.store import Store  # noqa: E402
from appliance.documents import CardCheck  # noqa: E402
from appliance.trust.rejections import Replayed, UntrustedCertificate  # noqa: E402
from appliance.uplink import LinkProblem  # noqa: E402
from ui.i18n import TEXTS  # noqa: E402
from ui.model import CardSlots, CompanyPicker, flow_marks, half_hour_usage, link_problem_text  # noqa: E402

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=JST)


def verified(code, name, menu=None, role=Role.SUPPLY):
    doc = SimpleNamespace(kind=role, action=Action.CONTRACT, company=Company(code, name), menu=menu,
                          data_types=(DataType.TIME, DataType.ENERGY), serial=1, switch=SwitchTime(immediate=True),
                          send_interval=None, measure_interval=None)
    return SimpleNamespace(document=doc, payload={"serial": 1}, verified_at=NOW)


def test_slots_remember_documents_and_build_changes():
    docs = {b"A": verified("A-EP", "A電力"), b"B": verified("B-EP", "B電力", menu="夜")}

    def verify(raw):
        if raw == b"bad":
            raise UntrustedCertificate("not the registry's")
        return docs[raw]

    slots = CardSlots(("1", "2"), verify, lambda: NOW)
    cb = slots.callbacks()
    cb.on_inserted("1")
    cb.on_document("1", b"A")
    cb.on_inserted("2")
    cb.on_document("2", b"B")
    ch = slots.immediate_change("2")
    assert ch.company.code == "B-EP" and ch.switch.immediate and ch.menu == "夜" and ch.source == "card:2"
    at = datetime(2026, 11, 24, 22, 0, tzinfo=JST)
    assert slots.scheduled_change("1", at).switch.at == at
    cb.on_removed("1")
    assert slots.immediate_change("1") is None
    assert {e["code"] for e in slots.entries()} == {"A-EP", "B-EP"}  # the list keeps what was read
    cb.on_inserted("1")
    cb.on_document("1", b"bad")
    st = slots.snapshot()["1"]
    assert st.problem["reason_ja"] == "会社証明書が登録機関の署名ではありません" and st.verified is None
    assert slots.problems[-1].slot == "1"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return new_pki()


@pytest.fixture
def meter(tmp_path, pki):
    """A real MeterAPI on a SQLite file, and the UI's two checks of a card: as read, and the stored copy."""
    clock = ManualClock(NOW)
    api = MeterAPI(Store(tmp_path / "meter.db"), METER, timedelta(minutes=30), clock)

    check = CardCheck(pki.root_public, METER, clock, api.store)  # the core's one check of a card
    yield SimpleNamespace(api=api, clock=clock, verify=check, verify_stored=check.stored)
    api.store.close()


def test_the_card_list_is_stored_by_the_meter_and_restored_after_a_restart(pki, meter):
    slots = CardSlots(("1", "2"), meter.verify, meter.clock.now, remember=meter.api.remember_card)
    cb = slots.callbacks()
    cb.on_document("1", pki.sign(serial=10))
    cb.on_document("2", pki.sign(pki.data, serial=3))
    cb.on_document("1", pki.sign(action=Action.MENU, menu="夜間", serial=11))
    cb.on_document("2", b"not a card")  # refused by verify: nothing stored
    assert [(c.code, c.menu, c.slot) for c in meter.api.stored_cards()] == [
        ("CHUGOKU-EP", None, "1"), ("DATA-A", None, "2"), ("CHUGOKU-EP", "夜間", "1")]

    changed = []
    fresh = CardSlots(("1",), meter.verify, meter.clock.now, changed=lambda: changed.append(1),
                      verify_stored=meter.verify_stored)
    assert fresh.restore(meter.api.stored_cards()) == 3 and changed
    assert fresh.entries() == slots.entries()
    ch = fresh.catalogue_change(("CHUGOKU-EP", "夜間"), source="card:1")
    assert (ch.company.code, ch.action, ch.menu, ch.serial, ch.switch.immediate) == (
        "CHUGOKU-EP", Action.MENU, "夜間", 11, True)

    # OK on the list stores the change and records serial 11 as used: the card itself is now a replay,
    # but the meter's stored copy still restores (no replay check on it).
    meter.api.submit_change(ch)
    with pytest.raises(Replayed):
        meter.verify(meter.api.stored_cards()[-1].document)
    again = CardSlots(("1",), meter.verify, meter.clock.now, verify_stored=meter.verify_stored)
    assert again.restore(meter.api.stored_cards()) == 3
    assert again.entries() == slots.entries()


def test_an_expired_stored_card_is_not_listed(pki, meter, caplog):
    slots = CardSlots(("1",), meter.verify, meter.clock.now, remember=meter.api.remember_card)
    slots.on_document("1", pki.sign(serial=10, expires_at=NOW + timedelta(hours=1)))
    slots.on_document("1", pki.sign(pki.data, serial=3))
    meter.clock.advance(timedelta(hours=2))
    fresh = CardSlots(("1",), meter.verify, meter.clock.now, verify_stored=meter.verify_stored)
    with caplog.at_level(logging.WARNING, logger="ui.model"):
        assert fresh.restore(meter.api.stored_cards()) == 1
    assert [e["code"] for e in fresh.entries()] == ["DATA-A"]
    assert fresh.catalogue_change(("CHUGOKU-EP", None)) is None
    assert "CHUGOKU-EP" in caplog.text and "expired" in caplog.text


def test_picker_select_cancel_ok():
    entries = [{"code": c, "name": c, "kind": "supply", "menu": None, "data_types": []} for c in ("A", "B", "C")]
    in_force = (ContractView(Role.SUPPLY, Company("B", "B"), (), None, timedelta(minutes=30), None),)
    p = CompanyPicker()
    p.update(entries, in_force)
    assert p.chosen()["code"] == "B"
    p.select()
    assert p.chosen()["code"] == "C"
    p.select()
    assert p.chosen()["code"] == "A"
    p.cancel()
    assert p.chosen()["code"] == "B"
    p.select()
    p.update(entries, in_force)  # a refresh keeps the household's choice
    assert p.chosen()["code"] == "C"
    p.point(0)
    assert p.chosen()["code"] == "A"
    p.point(7)  # not an entry: nothing moves
    assert p.chosen()["code"] == "A"


def test_fig7_mark_rules():
    def modes(reading, breaker=None):
        m = flow_marks(reading, breaker)
        return m.forward, m.reverse

    assert modes({"power_w": 800.0}) == ("blink", "off")
    assert modes({"power_w": 0.0}) == ("on", "on")
    assert modes({"power_w": -500.0}) == ("off", "blink")
    assert modes({"power_w": 800.0}, BreakerState(closed=False)) == ("blink", "blink")
    assert modes({"power_w": 0.0}, BreakerState.from_json({"closed": False, "reason": "confirmation failed"})) == (
        "blink", "blink")
    assert modes({"power_w": 0.0}, BreakerState(closed=True)) == ("on", "on")
    assert flow_marks(None, None).state == "unknown"


def test_half_hour_usage_reads_as_a_clock():
    """5-second readings land in their half hour; a window ending on a boundary counts for the half hour
    before; a bad reading marks its slot; half hours with nothing stored stay empty."""
    day = date(2026, 11, 24)
    midnight = datetime(2026, 11, 24, tzinfo=JST)

    def row(end, wh, seconds=5):
        return {"interval_start": (end - timedelta(seconds=seconds)).isoformat(), "interval_end": end.isoformat(),
                "energy_wh": wh}

    rows = [row(midnight + timedelta(minutes=30), 250.0, seconds=1800),  # 00:00-00:30
            row(midnight + timedelta(hours=7, seconds=5), 1.5), row(midnight + timedelta(hours=7, seconds=10), 2.5),
            row(midnight + timedelta(hours=8, minutes=1), None),
            row(midnight + timedelta(days=1), 100.0, seconds=1800)]  # 23:30-24:00
    u = half_hour_usage(day, rows)
    assert len(u.slots) == 48 and u.readings == 5
    assert u.slots[0] == 0.25 and u.slots[14] == pytest.approx(0.004) and u.slots[47] == 0.1
    assert u.bad == [16] and u.slots[16] is None
    assert sum(1 for v in u.slots if v is not None) == 3 and abs(u.total_kwh - 0.354) < 1e-9


def test_every_kind_of_link_problem_is_explained_to_the_household_in_both_languages():
    import re

    assert link_problem_text(LinkProblem.NONE) is None
    for problem in LinkProblem:
        if problem is LinkProblem.NONE:
            continue
        ja, en = TEXTS[link_problem_text(problem)]
        assert re.search(r"[ぁ-んァ-ン一-龥]", ja) and not re.search(r"[A-Za-z]{3,}", ja), problem  # plain Japanese
        assert en and en[0].isupper() and en.endswith("."), problem


def test_backlog_only_when_late_or_offline():
    from datetime import timedelta as td
    from types import SimpleNamespace as NS

    from ui.model import backlog

    now = datetime(2026, 12, 1, 12, 0, tzinfo=JST)
    contract = NS(send_interval=td(minutes=1))
    link = NS(connected=True)
    view = lambda **kw: NS(**{"queued": 10, "link": link, "in_force": (contract,), "now": now, "oldest_due": now, **kw})
    assert backlog(view()) is None  # the usual handful in flight
    assert backlog(view(queued=0, link=NS(connected=False))) is None
    assert backlog(view(link=NS(connected=False))) == "backlog_line"
    assert backlog(view(oldest_due=now - td(minutes=1, seconds=59))) is None
    assert backlog(view(oldest_due=now - td(minutes=2, seconds=1))) == "backlog_late"


def test_refusal_codes_are_worded_in_both_languages():
    from appliance.errors import ChangeRejected
    from appliance.trust.rejections import ALL_REJECTIONS
    from ui.i18n import TEXTS
    from ui.notices import REFUSED_OTHER, refusal, refusal_key

    for cls in ALL_REJECTIONS:
        assert refusal_key(cls.code) != REFUSED_OTHER, cls.code
    for key in set(refusal_key(c.code) for c in ALL_REJECTIONS) | {REFUSED_OTHER, refusal_key("past_switch_time")}:
        ja, en = TEXTS[key]
        assert ja and en and "。" in ja  # a sentence with its next step
    assert refusal(ChangeRejected("switch: 2026-12-03T07:33:00+09:00 is in the past", code="past_switch_time")).key \
        == "refused_past"
    assert refusal(ChangeRejected("anything else")).key == REFUSED_OTHER


def test_switch_notice_turns_past_tense_once_in_force():
    from types import SimpleNamespace as NS

    from ui.i18n import Texts
    from ui.notices import switching

    n = switching("ENEOSでんき", "supply", "ENEOS-P", None)
    tx = Texts("ja")
    assert n.text(tx) == "ENEOSでんき に切り換えます"
    other = NS(company=NS(code="TEPCO-EP"), role=NS(value="supply"), menu=None)
    assert n.settle([other]) is n
    done = n.settle([NS(company=NS(code="ENEOS-P"), role=NS(value="supply"), menu=None)])
    assert done.text(tx) == "ENEOSでんき に切り換えました" and done.text(Texts("en")) == "Switched to ENEOSでんき"
    assert switching("HEMSラボ", "data", "HEMS-LAB", None).text(tx) == "HEMSラボ へのデータ提供を開始します"


def test_flow_marks_power_cut_and_unmeasured():
    good = {"quality": "good", "power_w": 0.0, "voltage_v": 101.0}
    assert flow_marks(good, None).state == "no_load"
    assert flow_marks({**good, "voltage_v": 0.0}, None).state == "supply_cut"
    m = flow_marks({"quality": "bad", "power_w": None}, None)
    assert m.state == "unmeasured" and m.unmeasured


def test_tariff_tiers_and_unknown_menu():
    from ui.tariff import menu_of

    b = menu_of("従量電灯B")
    assert b.month_yen(120) == 120 * 30.00
    assert round(b.month_yen(400), 2) == round(120 * 30.00 + 180 * 36.60 + 100 * 40.69, 2)
    assert round(b.day_yen(10), 2) == round(b.month_yen(300) / 30, 2)
    assert menu_of("ENEOSでんきV") is None and menu_of(None) is None


def test_usage_axis_is_shared_and_round():
    from ui.model import axis_ticks, axis_top

    assert axis_top([0.03, 0.31]) == 0.5 and axis_top([]) == 0.05
    assert axis_ticks(0.5) == [0.125, 0.25, 0.375, 0.5]


def test_the_meters_alerts_are_worded_from_the_table_not_the_cores_message():
    """A household reads every alert in plain words in the screen's language, whatever the core stored."""
    from ui.i18n import Texts
    from ui.notices import alert_key

    cases = [("security_error", "mismatch", "send", None), ("security_error", "not_grid_operator", "breaker", None),
             ("card_rejected", "replayed", None, None), ("remote_rejected", "expired", None, None),
             ("breaker_remote", None, None, "open"), ("breaker_remote", None, None, "close"),
             ("breaker_fault", None, None, None)]
    for lang in ("ja", "en"):
        tx = Texts(lang)
        for kind, code, purpose, action in cases:
            text = tx.t(alert_key(kind, code, purpose, action), c="TEPCO-EP")
            assert text and "{" not in text and "security_error" not in text, (kind, lang)
    assert "TEPCO-EP" in Texts("ja").t(alert_key("security_error", "mismatch", "send", None), c="TEPCO-EP")
