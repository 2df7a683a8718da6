"""The example company server against hostile messages on a real broker: each is set aside with its
reason and acknowledged, the genuine readings after it are stored, and the loop never dies silently."""
from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import threading
from datetime import timedelta

import pytest
from polling import wait_for
from receivers import Publisher

from cloud import cli
from cloud.company_server import CompanyServer

CODE = "ACME"


def topic(meter: str, kind: str = "data", code: str = CODE) -> str:
    return f"companies/{code}/meters/{meter}/{kind}"


def reading(meter: str, seq: int, **fields) -> bytes:
    return json.dumps({"meter_id": meter, "company_code": CODE, "seq": seq, "power_w": 100.0, **fields}).encode()


@pytest.fixture
def publisher(broker):
    p = Publisher(broker)
    yield p
    p.close()


@pytest.fixture
def company(broker, tmp_path, clock):
    servers = []

    def start(**options) -> CompanyServer:
        server = CompanyServer(CODE, broker.account("company", CODE), tmp_path / "company.sqlite3", now=clock.now,
                               **options).start()
        assert server.connected.wait(10)
        servers.append(server)
        return server

    yield start
    for s in servers:
        s.stop()


def stored(server: CompanyServer, meter: str, seq: int) -> bool:
    return any(d["seq"] == seq for d in server.data(meter))


def test_deeply_nested_json_is_set_aside_and_not_redelivered_after_a_restart(company, publisher):
    server = company()
    publisher.send(topic("M1"), b'{"meter_id": "M1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    publisher.send(topic("M1"), reading("M1", 1))
    wait_for(lambda: stored(server, "M1", 1), what="the good reading after the nested one")
    assert server.received().rejected == 1
    [r] = server.rejected()
    assert (r["topic"], r["reason"]) == (topic("M1"), "too large")  # 200 kB: refused before parsing
    publisher.send(topic("M1"), b'{"meter_id": "M1", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}")
    publisher.send(topic("M1"), reading("M1", 2))
    wait_for(lambda: stored(server, "M1", 2), what="the good reading after the nested one")
    assert server.rejected()[-1]["reason"] == "nested too deeply"
    server.stop()
    again = company()  # the same persistent session: nothing refused comes back
    publisher.send(topic("M1"), reading("M1", 3))
    wait_for(lambda: stored(again, "M1", 3), what="a reading after the restart")
    assert again.received().rejected == 2 and again.failure is None


def test_a_body_naming_another_meter_is_refused_and_the_genuine_reading_kept(company, publisher):
    server = company()
    publisher.send(topic("M1"), reading("M2", 7, power_w=-9999.0))  # forged: M2's seq on M1's topic
    publisher.send(topic("M2"), reading("M2", 7))
    wait_for(lambda: stored(server, "M2", 7), what="the genuine M2 reading")
    assert [d["power_w"] for d in server.data("M2")] == [100.0]
    assert server.data("M1") == []
    assert server.received().duplicates == 0
    assert [r["reason"] for r in server.rejected()] == ["meter_id differs from topic"]


@pytest.mark.parametrize("payload, reason", [
    (reading("M1", 2**63), "invalid"),
    (reading("M1", 0), "invalid"),
    (reading("M1", -1), "invalid"),
    (reading("M1", "5"), "invalid"),
    (json.dumps({"meter_id": "M1", "company_code": "OTHER", "seq": 5}).encode(), "company_code differs"),
    (reading("M1", 5, pad="x" * 20_000), "too large"),
    (b"\xff\xfe", "not JSON"),
    (b"{not json", "not JSON"),
], ids=["seq-2^63", "seq-0", "seq-negative", "seq-string", "other-company", "20kB", "bytes", "garbage"])
def test_a_message_breaking_the_contract_is_set_aside_and_the_stream_goes_on(company, publisher, payload, reason):
    server = company()
    publisher.send(topic("M1"), payload)
    publisher.send(topic("M1"), reading("M1", 9))
    wait_for(lambda: stored(server, "M1", 9), what="the good reading after the bad one")
    assert [d["seq"] for d in server.data("M1")] == [9]
    assert server.received().rejected == 1
    [r] = server.rejected()
    assert r["reason"] == reason and len(r["excerpt"]) <= 200


def test_events_are_validated_too(company, publisher):
    server = company()
    event = {"meter_id": "M1", "company_code": CODE, "event_id": 1, "event": "contract_started",
             "at": "2026-11-23T00:00:00+09:00", "data_types": ["power"]}
    publisher.send(topic("M1", "events"), json.dumps({**event, "event_id": 2**64}).encode())
    publisher.send(topic("M1", "events"), json.dumps({**event, "meter_id": "M2"}).encode())
    publisher.send(topic("M1", "events"), json.dumps(event).encode())
    wait_for(lambda: len(server.events("M1")) == 1, what="the genuine event")
    assert server.record("M1") == ["power"] and server.received().rejected == 2


def test_the_details_the_server_acts_on_are_validated_before_anything_is_stored(company, publisher, clock):
    from appliance.domain import Role
    from appliance.trust import issue_certificate, keys

    registry, key = keys.generate(), keys.generate()
    cert = issue_certificate(registry, company_code=CODE, name="ACME", role=Role.DATA, public_key=key.public_key(),
                             not_before=clock.now() - timedelta(days=1), not_after=clock.now() + timedelta(days=365))
    server = company(key=key, certificate=cert)
    answers = []
    server.client.publish = lambda topic, payload, **kw: answers.append((topic, payload))
    started = {"meter_id": "M1", "company_code": CODE, "event": "contract_started", "at": "2026-11-23T00:00:00+09:00"}
    ask = {"meter_id": "M1", "company_code": CODE, "event": "confirm_request", "at": "2026-11-23T00:00:00+09:00",
           "purpose": "send"}
    hostile = [{**started, "event_id": 1, "data_types": ["power", "x" * 50]},  # would poison every later answer
               {**started, "event_id": 2, "data_types": "power"},
               {**ask, "event_id": 3},  # no nonce to echo
               {**ask, "event_id": 4, "nonce": "n" * 65},
               {**started, "event": "contract_scheduled", "action": "contract", "event_id": 5}]  # no change_id
    for body in hostile + [{**started, "event_id": 6, "data_types": ["power"]}, {**ask, "event_id": 7, "nonce": "ab12"}]:
        publisher.send(topic("M1", "events"), json.dumps(body).encode())
    wait_for(lambda: answers, what="the answer to the genuine request")
    assert [e["event_id"] for e in server.events("M1")] == [6, 7] and server.record("M1") == ["power"]
    got = server.received()
    assert (got.rejected, len(answers)) == (5, 1) and answers[0][0] == "meters/M1/commands"


def test_rejections_are_capped_pruned_and_logged_once_per_reason_per_minute(company, publisher, clock, caplog):
    server = company(keep_rejected=3)
    caplog.set_level(logging.WARNING, logger="cloud.company_server")
    for _ in range(5):
        publisher.send(topic("M1"), b"{not json")
    publisher.send(topic("M1"), reading("M1", 2**63))
    publisher.send(topic("M1"), reading("M1", 1))
    wait_for(lambda: stored(server, "M1", 1), what="the good reading")
    assert server.received().rejected == 6 and len(server.rejected()) == 3
    logged = [r.getMessage() for r in caplog.records if "rejected a message" in r.getMessage()]
    assert len(logged) == 2  # one per reason
    clock.advance(timedelta(days=31))
    publisher.send(topic("M1"), b"{not json")
    publisher.send(topic("M1"), reading("M1", 2))
    wait_for(lambda: stored(server, "M1", 2), what="the good reading")
    assert len(server.rejected()) == 1  # the month-old ones are pruned
    logged = [r.getMessage() for r in caplog.records if "rejected a message" in r.getMessage()]
    assert len(logged) == 3 and "4 more like it" in logged[-1]


class FailingDb:
    """A database that cannot be written any more (a full disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith(("INSERT", "BEGIN")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)


def test_a_broken_database_ends_the_loop_loudly_and_leaves_the_message_unacknowledged(company, publisher):
    server = company()
    real, server.db = server.db, FailingDb(server.db)
    publisher.send(topic("M1"), reading("M1", 1))
    assert server.finished.wait(10) and isinstance(server.failure, sqlite3.OperationalError)
    server.db = real
    server.stop()
    again = company()  # the broker redelivers what was never acknowledged
    wait_for(lambda: stored(again, "M1", 1), what="the redelivered reading")


def test_the_company_command_exits_non_zero_when_it_cannot_go_on(broker, tmp_path, monkeypatch, publisher):
    made = []

    class Recorded(CompanyServer):
        def start(self):
            made.append(self)
            return super().start()

    monkeypatch.setattr(cli, "CompanyServer", Recorded)
    safety = threading.Timer(30, lambda: os.kill(os.getpid(), signal.SIGTERM))  # a hang ends as exit 0

    def break_it():
        wait_for(lambda: made and made[0].connected.is_set(), what="the company server")
        made[0].db = FailingDb(made[0].db)
        publisher.send(topic("M1"), reading("M1", 1))

    threading.Thread(target=break_it, daemon=True).start()
    safety.start()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        args = cli.argparse.Namespace(code=CODE, mqtt_config=str(broker.party_file("company", CODE)), mqtt=None,
                                      db=str(tmp_path / "c.sqlite3"), share_group=None)
        assert cli.cmd_company(args) == 1
    finally:
        safety.cancel()
        for s, h in previous.items():
            signal.signal(s, h)
