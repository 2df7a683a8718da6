"""The manager's HTTP API refuses malformed input with 400 naming the field (413 when too large), never
500, and keeps answering."""
from __future__ import annotations

import json

import pytest
from receivers import ApiRig

from cloud.outage.api_schema import MAX_BODY_BYTES

AREA = "広島県/広島市中区/基町1丁目"
AT = "2026-11-23T10:00:00+09:00"
REGISTRATION = {"meter_id": "SM0000001", "customer_number": "C1", "area": AREA, "concentrator_id": "K1",
                "email": "c1@example.jp", "name": "山田", "language": "ja"}


@pytest.fixture
def rig(tmp_path):
    r = ApiRig(tmp_path / "outage.db")
    yield r
    r.close()


@pytest.mark.parametrize("path, body, field", [
    ("/da", {"area": 5, "kind": "outage", "at": AT}, "$.area"),
    ("/da", {"area": AREA, "kind": "outage", "at": "2026-11-23T10:00:00"}, "$.at"),
    ("/da", {"area": AREA, "kind": "outage"}, "$"),
    ("/da", [1, 2], "$"),
    ("/planned", {"area": AREA, "start": "0001-01-01T00:00:00+09:00", "end": AT}, "$"),
    ("/planned", {"area": AREA, "start": AT, "end": AT, "reason": "x" * 10_000}, "$.reason"),
    ("/registrations", [{**REGISTRATION, "email": "c1@example.jp\r\nBcc: all@example.jp"}], "$[0].email"),
    ("/registrations", [REGISTRATION, {**REGISTRATION, "name": "x" * 129}], "$[1].name"),
    ("/registrations", [{**REGISTRATION, "meter_id": "../../etc"}], "$[0].meter_id"),
    ("/registrations", {"meter_id": "SM1"}, "$"),
    ("/security_errors", {"meter_id": "SM0000001", "at": 12}, "$.at"),
    ("/security_errors", {"meter_id": "SM0000001", "at": AT, "detail": "\x00"}, "$.detail"),
    ("/outages/1", {"expected_restoration": "soon"}, "$.expected_restoration"),
    ("/outages/99999999999999999999", {"reason": "tree_contact"}, "id"),
    ("/outages/-1", {"reason": "tree_contact"}, "id"),
], ids=["type", "naive-time", "missing", "array", "year-1", "long", "header-injection", "name-129", "meter-id",
        "not-a-list", "time-type", "nul", "bad-time", "huge-id", "negative-id"])
def test_a_malformed_body_is_400_naming_the_field(rig, path, body, field):
    status, answer = rig.post(path, body)
    assert status == 400 and answer["field"] == field and answer["error"]
    assert rig.call("GET", "/outages") == (200, [])


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b"[" * 2000 + b"]" * 2000, b"\xff", b"{", b""],
                         ids=["nested-200k", "nested-2000", "not-utf8", "truncated", "empty"])
def test_an_unreadable_body_is_400(rig, raw):
    status, answer = rig.call("POST", "/da", raw)
    assert status == 400 and answer["field"] == "$"
    assert rig.call("GET", "/areas") == (200, [])


def test_a_body_over_the_limit_is_413_unread(rig):
    status, answer = rig.call("POST", "/registrations", b"[", headers={**rig.operator, "Content-Length": str(MAX_BODY_BYTES + 1)})
    assert status == 413 and "limit" in answer["error"]
    status, _ = rig.call("POST", "/registrations", b"", headers={**rig.operator, "Content-Length": str(10**12)})
    assert status == 413
    assert rig.call("POST", "/da", b"{}", headers={**rig.operator, "Content-Length": "-5"})[0] == 400
    assert rig.call("GET", "/outages") == (200, [])


def test_bad_path_parameters_are_400_and_good_requests_still_work(rig):
    assert rig.call("GET", "/meters/" + "x" * 1000)[0] == 400
    assert rig.call("GET", "/meters/SM0000001")[0] == 404
    assert rig.post("/registrations", [REGISTRATION]) == (200, {"registered": 1})
    status, outage = rig.post("/da", {"area": AREA, "kind": "outage", "at": AT})
    assert status == 200 and outage["status"] == "declared"
    status, answer = rig.post(f"/outages/{outage['id']}", {"expected_restoration": None, "reason": "tree_contact"})
    assert status == 200 and answer["reason"] == "tree_contact"
    assert rig.post("/outages/424242", {"reason": "x"})[0] == 400  # no such outage: as before
    assert rig.post("/security_errors", {"meter_id": "SM0000001", "at": AT, "detail": "署名検証エラー\n2行目"}) == \
        (200, {"queued": True})
    assert json.dumps(rig.call("GET", "/areas")[1], ensure_ascii=False).count(AREA) == 1
