"""Distribution automation, operators, planned outages and security errors, through the HTTP API
and the simulated DA feed."""
from __future__ import annotations

import json
import urllib.request
from datetime import timedelta

import pytest
from polling import wait_for as wait_until

from appliance.clock import iso
from cloud.outage.api import OutageApi
from cloud.outage.da_feed import DaFeed
from cloud.outage.model import OutageKind, OutageStatus
from operators import operator_accounts


@pytest.fixture
def api(pipeline, tmp_path):
    p = pipeline()
    accounts, operator, _ = operator_accounts(tmp_path)
    server = OutageApi(p.manager, p.notifier_config.sender, accounts, port=0).start()
    server.operator = operator
    yield p, server
    server.stop()


def call(server, method, path, body=None, auth=True):
    """As the operator (``auth``), or anonymously."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(server.operator if auth else {})}
    req = urllib.request.Request(server.url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_distribution_automation_declares_at_once_and_its_restoration_waits_for_the_meters(api):
    p, server = api
    p.window()
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(1)
    p.fleet.power_fail(meters[:3], gasp_share=1.0)
    p.fleet.power_fail(meters[3:], gasp_share=0.0)  # most gasps lost
    area = p.fleet.area(1)
    status, body = call(server, "POST", "/da", {"area": area.key, "kind": "outage", "at": iso(p.clock.now())})
    assert status == 200 and body["status"] == "declared"
    p.step(1)  # no declaration delay: DA is the grid's own word; its word also vouches for the 3 gasps only so far
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in meters[:3])
    p.window()  # the silent rest are corroborated by DA at the window's end
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in meters)
    status, body = call(server, "POST", "/da", {"area": area.key, "kind": "restored", "at": iso(p.clock.now())})
    assert body["status"] == "restoring"  # closes only when the meters confirm
    p.fleet.power_restore(meters)
    p.step(1)
    assert p.storage.outage(body["id"]).status is OutageStatus.RESTORED
    assert len(p.smtp.messages) == 20


def test_the_simulated_da_feed_reaches_the_manager(api, broker):
    p, _ = api
    feed = DaFeed(p.manager)
    feed.start(broker.account("operator", "da-feed"))
    try:
        p.fleet.da_event(p.fleet.area(2), "outage")
        wait_until(lambda: feed.received == 1, what="DA event")
    finally:
        feed.stop()
    [o] = p.storage.outages(open_only=True)
    assert (o.area, o.status, o.source) == (p.fleet.area(2), OutageStatus.DECLARED, "distribution_automation")
    assert p.smtp.messages == []  # no meter is down: nobody is told


def test_operator_form_through_the_api(api):
    p, server = api
    p.window()
    p.fleet.power_fail(p.fleet.meters_of_area(0))
    p.step(1), p.step(30)
    [o] = p.storage.outages()
    status, body = call(server, "POST", f"/outages/{o.id}", {"response_status": "repairing", "reason": "tree_contact",
                                                            "expected_restoration": iso(p.clock.now() + timedelta(hours=1))})
    assert status == 200 and body["revision"] == 1
    p.step(1)
    assert len(p.smtp.messages) == 20
    assert "停電理由：樹木接触" in p.smtp.to(p.emails(0))[-1].get_content()
    assert call(server, "GET", "/areas")[1] == [{"area": body["area"], "current": 10, "peak": 10}]
    info = call(server, "GET", "/meters/SM0000001")[1]
    assert info["outage"]["id"] == o.id and info["member"]["restored_at"] is None
    assert call(server, "POST", "/outages/999", {"reason": "x"})[0] == 400


def test_planned_outage_notice_ahead_of_time_and_absorbs_its_meters(api):
    p, server = api
    p.window()
    area = p.fleet.area(3)
    start = p.clock.now() + timedelta(days=4)
    status, body = call(server, "POST", "/planned", {"area": area.key, "start": iso(start), "end": iso(start + timedelta(hours=2)),
                                                     "reason": "construction"})
    assert status == 200 and body["status"] == "planned"
    p.step(1)
    assert p.smtp.messages == []  # three days ahead, not four
    p.step(timedelta(days=1, minutes=1).total_seconds())
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in p.fleet.meters_of_area(3))
    text = p.smtp.to(p.emails(30))[0].get_content()
    assert "工事停電のお知らせ" in text and "停電予定日時：2026年11月27日 10:32 〜 2026年11月27日 12:32" in text
    p.clock.set(start)
    p.window()
    p.fleet.power_fail(p.fleet.meters_of_area(3))
    p.step(1), p.step(60)
    assert len(p.smtp.messages) == 10  # the planned work explains it: no outage e-mail
    assert [o.kind for o in p.storage.outages(open_only=True)] == [OutageKind.PLANNED]


def test_security_error_and_unsubscribe_link(api):
    p, server = api
    status, body = call(server, "POST", "/security_errors", {"meter_id": "SM0000004", "detail": "署名検証エラー", "at": iso(p.clock.now())})
    assert body == {"queued": True}
    p.step(1)
    [msg] = p.smtp.messages
    assert "セキュリティエラー" in msg.get_content() and "署名検証エラー" in msg.get_content()
    link = msg["List-Unsubscribe"].strip().strip("<>")
    path = link[link.index("/unsubscribe"):]
    assert call(server, "GET", path + "x", auth=False)[0] == 403  # a tampered token
    assert call(server, "GET", path.replace("SM0000004", "SM0000005"), auth=False)[0] == 403  # another meter's
    assert not p.storage.registration("SM0000005").unsubscribed
    assert call(server, "GET", path, auth=False)[0] == 200  # the customer's own link needs no login
    assert p.storage.registration("SM0000004").unsubscribed
