"""An example company server: what a power or data-utilization company runs to receive meter data.

It subscribes to its own ``companies/{code}/#`` topics at QoS 1 with a persistent MQTT 5 session
(the broker holds messages while the server is down), stores each reading once, deduplicating on
``(meter_id, seq)`` (events on ``(meter_id, event_id)``), and acknowledges a message only after it
is stored. The demo and the tests use it to show who received what.

Given the company's signing key and certificate it also answers the meter's confirmation requests
(embodiment 4): each ``confirm_request`` event gets a signed ``confirm`` command on
``meters/{id}/commands`` carrying the data types the company has on record for that meter. The
record is learnt from the meter's own events (``contract_scheduled`` for a pending change,
``contract_started`` for the contract in force) or configured (``records=``). ``answer`` can be set
to ``"wrong"`` (answers other data types, as a spoofed record would), ``"silent"`` (never answers)
or ``"forged"`` (signs with a key the registry did not certify), for tests and demonstrations.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS data (
    meter_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (meter_id, seq));
CREATE TABLE IF NOT EXISTS events (
    meter_id TEXT NOT NULL, event_id INTEGER NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (meter_id, event_id));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    meter_id TEXT NOT NULL, change_id INTEGER NOT NULL, data_types TEXT NOT NULL,
    PRIMARY KEY (meter_id, change_id));  -- change_id 0: the contract in force
"""

ANSWER_MODES = ("records", "wrong", "silent", "forged")


@dataclass(frozen=True)
class Received:
    data: int
    events: int
    duplicates: int
    rejected: int


class CompanyServer:
    def __init__(self, code: str, host: str, port: int, db_path: str | Path, *, username: str | None = None,
                 password: str | None = None, share_group: str | None = None, key: Any = None,
                 certificate: bytes | None = None, records: dict[str, list[str]] | None = None,
                 answer: str = "records", now: Callable[[], datetime] | None = None) -> None:
        """``key``/``certificate``: the company's Ed25519 signing key and its registry certificate (both or
        neither); with them the server answers confirmation requests. ``records``: meter id -> data
        types on contract (configured records; the meter's events update them). ``now``: the clock
        the answers are signed with."""
        if (key is None) != (certificate is None):
            raise ValueError("a company server needs both its key and its certificate to answer confirmations")
        if answer not in ANSWER_MODES:
            raise ValueError(f"answer: {answer!r} is not one of {', '.join(ANSWER_MODES)}")
        self.key, self.certificate = key, certificate
        self.answer = answer
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.answered = 0
        self.code = code
        self.host, self.port = host, port
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()
        for meter_id, types in (records or {}).items():
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?, 0, ?)", (meter_id, json.dumps(list(types))))
        topic = f"companies/{code}/meters/+/+"
        self.topic = f"$share/{share_group}/{topic}" if share_group else topic
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"company-{code}-{share_group or 'main'}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message

    def start(self) -> "CompanyServer":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps our queue for a week of downtime
        self.client.connect_async(self.host, self.port, clean_start=False, properties=props)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("company %s: broker refused: %s", self.code, reason_code)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        # Runs before paho sends the PUBACK: a message is acknowledged only once it is stored.
        try:
            body = json.loads(msg.payload)
            meter_id = str(body["meter_id"])
            if body.get("company_code") != self.code:
                raise ValueError(f"addressed to {body.get('company_code')!r}, not {self.code!r}")
            kind = msg.topic.rsplit("/", 1)[-1]
            with self._lock:
                if kind == "data":
                    new = self.db.execute("INSERT OR IGNORE INTO data VALUES(?,?,?)",
                                          (meter_id, int(body["seq"]), msg.payload.decode())).rowcount
                elif kind == "events":
                    new = self.db.execute("INSERT OR IGNORE INTO events VALUES(?,?,?,?)",
                                          (meter_id, int(body["event_id"]), str(body["event"]),
                                           msg.payload.decode())).rowcount
                else:
                    raise ValueError(f"unknown topic {msg.topic}")
                if not new:
                    self._count("duplicates")
                elif kind == "events":
                    self._learn(meter_id, body)
            if new and kind == "events" and body.get("event") == "confirm_request":
                self._answer(meter_id, body)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("company %s: rejected message on %s: %s", self.code, msg.topic, exc)
            with self._lock:
                self._count("rejected")

    # -- confirmation (embodiment 4) ---------------------------------------------------------
    def _learn(self, meter_id: str, body: dict[str, Any]) -> None:
        """Keep the contract record from the meter's events (the real company's own sales system)."""
        event = body.get("event")
        if event == "contract_scheduled" and body.get("action") == "contract":
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?,?,?)",
                            (meter_id, int(body["change_id"]), json.dumps(list(body.get("data_types") or []))))
        elif event == "contract_started":
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?, 0, ?)",
                            (meter_id, json.dumps(list(body.get("data_types") or []))))

    def record(self, meter_id: str, change_id: int | None = None) -> list[str] | None:
        """The data types on record for a meter: of a scheduled change, else of the contract in force."""
        for cid in ([change_id] if change_id else []) + [0]:
            row = self.db.execute("SELECT data_types FROM records WHERE meter_id=? AND change_id=?",
                                  (meter_id, cid)).fetchone()
            if row:
                return json.loads(row[0])
        return None

    def set_record(self, meter_id: str, data_types: list[str]) -> None:
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?, 0, ?)", (meter_id, json.dumps(list(data_types))))

    def _answer(self, meter_id: str, body: dict[str, Any]) -> None:
        if self.key is None or self.answer == "silent":
            return
        from appliance.trust import sign_command  # the company's side of the signed command format

        change_id = body.get("change_id") if body.get("purpose") == "switch" else None
        with self._lock:
            types = self.record(meter_id, change_id)
        if types is None:
            log.warning("company %s: no contract record for meter %s; not confirming", self.code, meter_id)
            return
        key = self.key
        if self.answer == "wrong":
            types = _spoofed(types)
        elif self.answer == "forged":
            from appliance.trust import keys

            key = keys.generate()
        try:
            payload = sign_command("confirm", meter_id=meter_id, company_key=key, certificate=self.certificate,
                                   now=self.now(), nonce=str(body["nonce"]), data_types=types)
        except Exception as exc:  # "forged": the library refuses a key that is not the certificate's
            if self.answer != "forged":
                raise
            payload = _forge(meter_id, key, self.certificate, self.now(), str(body["nonce"]), types, exc)
        self.client.publish(f"meters/{meter_id}/commands", payload, qos=1, retain=False)
        self.answered += 1

    def _count(self, name: str) -> None:
        self.db.execute("INSERT INTO counters VALUES(?, 1) ON CONFLICT(name) DO UPDATE SET value=value+1", (name,))

    # -- what the company has -------------------------------------------------------------
    def data(self, meter_id: str | None = None) -> list[dict[str, Any]]:
        return read_data(self.db, meter_id)

    def events(self, meter_id: str | None = None) -> list[dict[str, Any]]:
        return read_events(self.db, meter_id)

    def received(self) -> Received:
        return summary(self.db)


def read_data(db: sqlite3.Connection, meter_id: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT body FROM data" + (" WHERE meter_id=?" if meter_id else "") + " ORDER BY meter_id, seq"
    return [json.loads(r[0]) for r in db.execute(q, (meter_id,) if meter_id else ())]


def read_events(db: sqlite3.Connection, meter_id: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT body FROM events" + (" WHERE meter_id=?" if meter_id else "") + " ORDER BY meter_id, event_id"
    return [json.loads(r[0]) for r in db.execute(q, (meter_id,) if meter_id else ())]


def summary(db: sqlite3.Connection) -> Received:
    counters = dict(db.execute("SELECT name, value FROM counters"))
    return Received(
        data=db.execute("SELECT count(*) FROM data").fetchone()[0],
        events=db.execute("SELECT count(*) FROM events").fetchone()[0],
        duplicates=counters.get("duplicates", 0),
        rejected=counters.get("rejected", 0),
    )


def _spoofed(types: list[str]) -> list[str]:
    """Data types other than the record's (what a server with a tampered record would answer)."""
    extra = [t for t in ("voltage", "current", "totals", "power") if t not in types]
    return list(types) + extra[:1] if extra else list(types)[:-1]


def _forge(meter_id: str, key: Any, certificate: bytes, now: datetime, nonce: str, types: list[str],
           _why: Exception) -> bytes:
    """A confirm signed with a key the certificate does not name: a bad signature at the meter."""
    import base64
    from datetime import timedelta

    import cbor2

    from appliance.clock import iso
    from appliance.trust.cose import sign1
    from appliance.trust.document import CERT_HEADER
    from appliance.trust.certificate import parse_certificate

    body = {"type": "confirm", "meter_id": meter_id, "company_code": parse_certificate(certificate).company_code,
            "issued_at": iso(now), "expires_at": iso(now + timedelta(minutes=5)), "nonce": nonce,
            "data_types": list(types)}
    signed = sign1(cbor2.dumps(body, canonical=True), key, {CERT_HEADER: certificate})
    return json.dumps({"type": "confirm", "cose_sign1": base64.b64encode(signed).decode()}).encode()
