"""Hostile input against the receivers, as tests/cards/test_fuzz.py does for cards: generated MQTT
payloads into a running company server over a real Mosquitto, generated requests against the
manager's API. Nothing may crash, stall or store garbage, and a good message after each is taken."""
from __future__ import annotations

import itertools
import json
from datetime import timedelta
from urllib.parse import quote

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polling import wait_for
from receivers import ApiRig, Publisher, send_once

from appliance.datatypes import DataType
from appliance.wire import CompanyData, CompanyEvent
from cloud.company_server import CompanyServer

CODE = "ACME"
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# -- values a hostile party likes -------------------------------------------------------------
huge_ints = st.one_of(st.integers(), st.sampled_from([0, -1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**40]))
texts = st.text(max_size=40)  # any unicode, controls and surrogate-free astral planes included
scalars = st.one_of(st.none(), st.booleans(), huge_ints, st.floats(), texts)
json_values = st.recursive(scalars, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                           st.dictionaries(texts, kids, max_size=4)), max_leaves=20)
meter_ids = st.one_of(st.sampled_from(["M1", "M2", "GOOD", ""]), texts)


@st.composite
def near_miss(draw, fields: dict) -> dict:
    """A body with the expected keys, each either plausible or hostile, plus stray keys."""
    body = {k: draw(st.one_of(v, json_values)) for k, v in fields.items() if draw(st.booleans()) or draw(st.booleans())}
    body.update(draw(st.dictionaries(texts, json_values, max_size=2)))
    return body


def nested(depth: int) -> bytes:
    return b'{"meter_id": "M1", "company_code": "ACME", "seq": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


def as_bytes(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


events = st.one_of(st.sampled_from(["contract_started", "contract_scheduled", "confirm_request"]), texts)
company_bodies = near_miss({"meter_id": meter_ids, "company_code": st.sampled_from([CODE, "OTHER", ""]),
                            "seq": huge_ints, "event_id": huge_ints, "event": events,
                            "at": st.one_of(st.just("2026-11-23T00:00:00+09:00"), texts),
                            # the details the server acts on: records learnt, confirmations answered
                            "action": st.sampled_from(["contract", "menu"]), "change_id": huge_ints,
                            "data_types": st.lists(st.sampled_from(["power", "energy", "x"])),
                            "nonce": texts, "purpose": st.sampled_from(["send", "switch", "x"])})
company_payloads = st.one_of(
    company_bodies.map(as_bytes),
    json_values.map(as_bytes),
    st.integers(1, 200_000).map(nested),
    st.binary(max_size=200),
    st.integers(16_000, 300_000).map(lambda n: as_bytes({"meter_id": "M1", "company_code": CODE, "seq": 3,
                                                           "pad": "\u3042" * (n // 3)})),
)
WELL_FORMED = [f"companies/{CODE}/meters/{m}/{k}" for m in ("M1", "M2") for k in ("data", "events")]
company_topics = st.one_of(
    st.sampled_from(WELL_FORMED),
    # Any meter segment, unicode included; control characters are left out: the broker itself cuts off
    # whoever sends them, so they never reach a receiver.
    st.from_regex(r"\Acompanies/ACME/meters/[^/+#\x00-\x1f\x7f-\x9f]{1,20}/(data|events|x)\Z"),
)


@pytest.fixture
def company(broker, tmp_path, clock):
    from appliance.domain import Role
    from appliance.trust import issue_certificate, keys

    registry, key = keys.generate(), keys.generate()  # it answers confirmation requests too
    cert = issue_certificate(registry, company_code=CODE, name=CODE, role=Role.DATA, public_key=key.public_key(),
                             not_before=clock.now() - timedelta(days=1), not_after=clock.now() + timedelta(days=365))
    server = CompanyServer(CODE, broker.account("company", CODE), tmp_path / "company.sqlite3", key=key, certificate=cert,
                           now=clock.now).start()
    assert server.connected.wait(10)
    publisher = Publisher(broker)
    yield server, publisher, {"seqs": itertools.count(1), "at least": 0, "at most": 0}
    publisher.close()
    server.stop()


@FUZZ
@given(topic=company_topics, payload=company_payloads)
def test_hostile_messages_never_stop_or_fool_the_company_server(company, topic, payload):
    server, publisher, sent = company
    taken = send_once(publisher.broker, topic, payload)  # the broker itself may refuse a malformed topic
    seq = next(sent["seqs"])
    sent["at least"] += 1 + (taken and topic in WELL_FORMED)
    sent["at most"] += 1 + taken
    good = {"meter_id": "GOOD", "company_code": CODE, "seq": seq, "power_w": 1.0}
    publisher.send(f"companies/{CODE}/meters/GOOD/data", as_bytes(good))
    wait_for(lambda: any(d["seq"] == seq for d in server.data("GOOD")) or server.failure is not None,
             timeout=10, what="the good reading after a hostile one")
    assert server.failure is None
    got = server.received()
    accounted = got.data + got.events + got.duplicates + got.rejected
    assert sent["at least"] <= accounted <= sent["at most"]  # every message delivered is accounted for
    stored = [msgspec.convert(r, CompanyData) for r in server.data()] + \
        [msgspec.convert(r, CompanyEvent) for r in server.events()]  # nothing stored breaks the contract
    assert all(s.company_code == CODE for s in stored)
    for (types,) in server.db.execute("SELECT data_types FROM records"):
        msgspec.json.decode(types, type=list[DataType])  # nor does a record learnt from the events
    assert not [d for d in server.data("M2") if "M2" not in topic]  # no body stored under another meter


# -- the manager's API ----------------------------------------------------------------------
times = st.one_of(st.sampled_from(["2026-11-23T10:00:00+09:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59Z",
                                   "2026-11-23T10:00:00", "2026-02-30T10:00:00Z", ""]), texts, huge_ints)
areas = st.one_of(st.sampled_from(["広島県/広島市中区/基町1丁目", "a/b", "a//c", "/".join(["x" * 70] * 3)]), texts)
registration = near_miss({"meter_id": meter_ids, "customer_number": texts, "area": areas, "concentrator_id": texts,
                          "email": st.sampled_from(["a@example.jp", "a@b\r\nBcc: x@y", ""]), "name": texts,
                          "language": st.sampled_from(["ja", "en", "fr"]), "unsubscribed": json_values})
ROUTE_BODIES = {
    "/da": near_miss({"area": areas, "kind": st.sampled_from(["outage", "restored", "x"]), "at": times,
                      "reference": texts}),
    "/planned": near_miss({"area": areas, "start": times, "end": times, "reason": texts}),
    "/registrations": st.lists(registration, max_size=3),
    "/security_errors": near_miss({"meter_id": meter_ids, "at": times, "detail": texts, "reference": texts}),
    "/outages/1": near_miss({"response_status": texts, "reason": texts, "expected_restoration": times}),
}
path_segments = st.text(st.characters(blacklist_categories=["Cs", "Cc"], blacklist_characters="?#/% "), max_size=30)
paths = st.one_of(
    st.sampled_from(sorted(ROUTE_BODIES) + ["/outages", "/areas", "/unsubscribe?meter_id=M1&token=x"]),
    path_segments.map(lambda s: "/meters/" + s), path_segments.map(lambda s: "/outages/" + s),
    st.lists(path_segments, max_size=4).map(lambda p: "/" + "/".join(p)),
).map(lambda p: quote(p, safe="/?=&"))  # a request line is ASCII
bodies = st.one_of(
    st.sampled_from(sorted(ROUTE_BODIES)).flatmap(lambda r: ROUTE_BODIES[r]).map(as_bytes),
    json_values.map(as_bytes),
    st.integers(1, 100_000).map(lambda n: b"[" * n + b"]" * n),
    st.binary(max_size=100),
)


@pytest.fixture
def api(tmp_path):
    rig = ApiRig(tmp_path / "outage.db")
    yield rig
    rig.close()


@FUZZ
@given(method=st.sampled_from(["GET", "POST"]), path=paths, body=bodies)
def test_generated_requests_never_make_the_api_fail(api, method, path, body):
    status, answer = api.call(method, path, body if method == "POST" else None)
    assert status < 500, (status, answer)
    assert status == 200 or "error" in answer
    assert api.call("GET", "/outages")[0] == 200  # and the next request is still answered
