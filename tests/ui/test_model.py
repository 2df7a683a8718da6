"""The presenters without Kivy: card slots, the Fig. 9(b) picker, the Fig. 7 marks."""
from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from appliance.clock import JST
from appliance.datatypes import DataType
from appliance.domain import Action, Company, Role, SwitchTime
from appliance.trust.rejections import UntrustedCertificate
from ui.model import CardSlots, CompanyPicker, flow_marks

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=JST)


def verified(code, name, menu=None, role=Role.SUPPLY):
    doc = SimpleNamespace(kind=role, action=Action.CONTRACT, company=Company(code, name), menu=menu,
                          data_types=(DataType.TIME, DataType.ENERGY), serial=1, switch=SwitchTime(immediate=True),
                          send_interval=None)
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


def test_picker_select_cancel_ok():
    entries = [{"code": c, "name": c, "kind": "supply", "menu": None, "data_types": []} for c in ("A", "B", "C")]
    in_force = [{"company": "B", "role": "supply", "menu": None}]
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


def test_fig7_mark_rules():
    def modes(reading, breaker=None):
        m = flow_marks(reading, breaker)
        return m.forward, m.reverse

    assert modes({"power_w": 800.0}) == ("blink", "off")
    assert modes({"power_w": 0.0}) == ("on", "on")
    assert modes({"power_w": -500.0}) == ("off", "blink")
    assert modes({"power_w": 800.0}, {"state": "open"}) == ("blink", "blink")
    assert modes({"power_w": 0.0}, {"closed": False, "reason": "confirmation failed"}) == ("blink", "blink")
    assert modes({"power_w": 0.0}, {"closed": True}) == ("on", "on")
    assert flow_marks(None, None).state == "unknown"
