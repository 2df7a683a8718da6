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

Every message is untrusted: it is validated against the wire contract (:mod:`appliance.wire`) and
its topic. One that fails is set aside in the ``rejected`` table with its reason, counted, logged
once per reason per minute, and acknowledged, so the stream goes on. A failure that is not the
message's fault (the database cannot be written) ends the MQTT loop without acknowledging, and
``failure`` / ``finished`` tell the process to exit non-zero so that it is restarted.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, Literal

import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.config import MqttSection
from appliance.datatypes import DataType
from appliance.mqtt_settings import describe_refusal, diagnose_connect
from appliance.wire import CompanyData, CompanyEvent, EventId, WireError, check_topic, decode

from .mqtt import BrokerRefused, make_client

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
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY, topic TEXT NOT NULL, reason TEXT NOT NULL, excerpt TEXT NOT NULL, at TEXT NOT NULL);
"""

ANSWER_MODES = ("records", "wrong", "silent", "forged")
EXCERPT_CHARS = 200  # of a rejected payload (and its topic), enough to recognise it
KEEP_REJECTED = 10_000  # rows; older ones are dropped first
REJECTED_RETENTION = timedelta(days=30)
LOG_EVERY = timedelta(minutes=1)  # a rejection reason is logged at most this often


class ContractTerms(msgspec.Struct, frozen=True):
    """What the server learns from ``contract_scheduled`` / ``contract_started``: the data types on contract."""

    action: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    change_id: EventId | None = None
    data_types: Annotated[list[DataType], msgspec.Meta(max_length=4 * len(DataType))] = []


class ConfirmRequest(msgspec.Struct, frozen=True):
    """A ``confirm_request`` event: the nonce the signed answer must echo, and what it confirms."""

    nonce: Annotated[str, msgspec.Meta(pattern=r"^[!-~]{1,64}$")]  # printable ASCII, as a command allows
    purpose: Literal["switch", "send"]
    change_id: EventId | None = None


LEARNT_FROM = {"contract_scheduled": ContractTerms, "contract_started": ContractTerms,
               "confirm_request": ConfirmRequest}  # events whose details the server acts on, declared


@dataclass(frozen=True)
class Received:
    data: int
    events: int
    duplicates: int
    rejected: int


class CompanyServer:
    def __init__(self, code: str, broker: MqttSection, db_path: str | Path, *, share_group: str | None = None,
                 key: Any = None,
                 certificate: bytes | None = None, records: dict[str, list[str]] | None = None,
                 answer: str = "records", now: Callable[[], datetime] | None = None,
                 keep_rejected: int = KEEP_REJECTED) -> None:
        """``key``/``certificate``: the company's Ed25519 signing key and its registry certificate (both or
        neither); with them the server answers confirmation requests. ``records``: meter id -> data
        types on contract (configured records; the meter's events update them). ``now``: the clock
        the answers are signed and rejections stamped with. ``keep_rejected``: the cap of the
        ``rejected`` table."""
        if (key is None) != (certificate is None):
            raise ValueError("a company server needs both its key and its certificate to answer confirmations")
        if answer not in ANSWER_MODES:
            raise ValueError(f"answer: {answer!r} is not one of {', '.join(ANSWER_MODES)}")
        self.key, self.certificate = key, certificate
        self.answer = answer
        self.now = now or (lambda: datetime.now(timezone.utc))
        self.answered = 0
        self.keep_rejected = keep_rejected
        self._logged: dict[str, tuple[datetime, int]] = {}  # reason -> (last logged, suppressed since)
        self.failure: BaseException | None = None  # why the MQTT loop could not go on
        self.finished = threading.Event()  # set on failure; a process waits on it (and on its signals)
        self._thread: threading.Thread | None = None
        self.code = code
        self.broker = broker
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()
        for meter_id, types in (records or {}).items():
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?, 0, ?)", (meter_id, json.dumps(list(types))))
        topic = f"companies/{code}/meters/+/+"
        self.topic = f"$share/{share_group}/{topic}" if share_group else topic
        self.connected = threading.Event()
        self._unreachable_logged = False
        self._stopping = False
        self.client = make_client(broker, client_id=f"company-{code}-{share_group or 'main'}")
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self) -> "CompanyServer":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps our queue for a week of downtime
        self.client.connect_async(self.broker.host, self.broker.port, keepalive=self.broker.keepalive,
                                  clean_start=False, properties=props)
        self._thread = threading.Thread(target=self._loop, name=f"company-{self.code}-mqtt", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        if self._thread is not None:
            self._thread.join(10)

    def _loop(self) -> None:
        """paho's network loop; an exception escaping a callback ends it (before the PUBACK is sent),
        and is then recorded, logged and announced rather than lost with the thread."""
        try:
            self.client.loop_forever(retry_first_connection=True)
        except BaseException as exc:
            self.failure = exc
            log.critical("company %s: cannot go on receiving: %r", self.code, exc, exc_info=exc)
            self.finished.set()

    def _give_up(self, reason: str) -> None:
        """A refusal that retrying will not cure (the account, the ACL, a certificate): stop, and say why."""
        log.critical("company %s: %s", self.code, reason)
        self.failure = BrokerRefused(reason)
        self.finished.set()
        self.client.disconnect()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            if str(reason_code) in ("Server unavailable", "Server busy"):
                log.warning("company %s: the broker is not ready (%s); retrying", self.code, reason_code)
                return
            self._give_up(f"the MQTT broker refused {self.broker.username or 'an anonymous client'}: "
                          f"{describe_refusal(str(reason_code))}")
            return
        client.subscribe(self.topic, qos=1)

    def _on_connect_fail(self, client, userdata) -> None:
        reason = diagnose_connect(self.broker.host, self.broker.port, self.broker)
        if not self.broker.tls or "works" in reason or reason.startswith("cannot reach"):
            # down, not yet up, or closed on us: paho retries with backoff; a certificate refusal is for good
            if self._unreachable_logged is not True:
                log.warning("company %s: %s; retrying", self.code, reason)
                self._unreachable_logged = True
            return
        self._give_up(reason)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was_up = self.connected.is_set()
        self.connected.clear()
        if not was_up and self.failure is None and not self._stopping:
            self._on_connect_fail(client, userdata)  # dropped before MQTT said anything: TLS or the network

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # Connected means subscribed: a message published from now on reaches us.
        if not any(rc.is_failure for rc in reason_codes):
            self.connected.set()
        else:
            self._give_up(f"the broker refused the subscription to {self.topic}: {reason_codes} "
                          "(check this account's ACL)")

    def _on_message(self, client, userdata, msg) -> None:
        # Runs before paho sends the PUBACK: a message is acknowledged only once it is stored or set
        # aside. Whatever the sender put in it, only a broken database may end the loop.
        try:
            self._receive(msg.topic, msg.payload)
        except WireError as exc:
            self._reject(msg.topic, msg.payload, exc.reason, str(exc))
        except Exception as exc:
            if _not_the_messages_fault(exc):
                raise
            self._reject(msg.topic, msg.payload, f"unhandled ({type(exc).__name__})", str(exc))

    def _receive(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != "companies" or parts[2] != "meters" or parts[4] not in ("data", "events"):
            raise WireError("unknown topic")
        if parts[1] != self.code:
            raise WireError("topic of another company")
        kind = parts[4]
        msg = decode(payload, CompanyData if kind == "data" else CompanyEvent)
        check_topic(msg.meter_id, parts[3])
        if msg.company_code != self.code:
            raise WireError("company_code differs", f"{msg.company_code} != {self.code}")
        details = decode(payload, LEARNT_FROM[msg.event]) if kind == "events" and msg.event in LEARNT_FROM else None
        if isinstance(details, ContractTerms) and msg.event == "contract_scheduled" and details.action == "contract" \
                and details.change_id is None:
            raise WireError("invalid", "a scheduled contract without its change_id")
        text = payload.decode()
        with self._lock, self._transaction():  # the event and what is learnt from it, or neither
            if kind == "data":
                new = self.db.execute("INSERT OR IGNORE INTO data VALUES(?,?,?)", (msg.meter_id, msg.seq, text)).rowcount
            else:
                new = self.db.execute("INSERT OR IGNORE INTO events VALUES(?,?,?,?)",
                                      (msg.meter_id, msg.event_id, msg.event, text)).rowcount
            if not new:
                self._count("duplicates")
            elif isinstance(details, ContractTerms):
                self._learn(msg.meter_id, msg.event, details)
        if new and isinstance(details, ConfirmRequest):
            self._answer(msg.meter_id, details)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _reject(self, topic: str, payload: bytes, reason: str, detail: str) -> None:
        """Set a refused message aside (bounded excerpt, capped table), count it, log it sparingly."""
        now = self.now()
        excerpt = payload[:EXCERPT_CHARS].decode("utf-8", "replace")
        with self._lock:
            self.db.execute("INSERT INTO rejected(topic, reason, excerpt, at) VALUES(?,?,?,?)",
                            (topic[:EXCERPT_CHARS], reason, excerpt, _utc(now)))
            self.db.execute("DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ? OR at < ?",
                            (self.keep_rejected, _utc(now - REJECTED_RETENTION)))
            self._count("rejected")
        last, suppressed = self._logged.get(reason, (None, 0))
        if last is None or now - last >= LOG_EVERY:
            more = f" ({suppressed} more like it since {last.isoformat()})" if suppressed else ""
            log.warning("company %s: rejected a message on %s: %s%s", self.code, topic[:EXCERPT_CHARS],
                        detail[:EXCERPT_CHARS], more)
            self._logged[reason] = (now, 0)
        else:
            self._logged[reason] = (last, suppressed + 1)

    # -- confirmation (embodiment 4) ---------------------------------------------------------
    def _learn(self, meter_id: str, event: str, terms: ContractTerms) -> None:
        """Keep the contract record from the meter's events (the real company's own sales system)."""
        types = json.dumps([t.value for t in terms.data_types])
        if event == "contract_scheduled" and terms.action == "contract":
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?,?,?)", (meter_id, terms.change_id, types))
        elif event == "contract_started":
            self.db.execute("INSERT OR REPLACE INTO records VALUES(?, 0, ?)", (meter_id, types))

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

    def _answer(self, meter_id: str, request: ConfirmRequest) -> None:
        if self.key is None or self.answer == "silent":
            return
        from appliance.trust import sign_command  # the company's side of the signed command format

        change_id = request.change_id if request.purpose == "switch" else None
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
                                   now=self.now(), nonce=request.nonce, data_types=types)
        except Exception as exc:  # "forged": the library refuses a key that is not the certificate's
            if self.answer != "forged":
                raise
            payload = _forge(meter_id, key, self.certificate, self.now(), request.nonce, types, exc)
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

    def rejected(self) -> list[dict[str, Any]]:
        """The messages set aside, oldest first: topic, reason, excerpt, at."""
        rows = self.db.execute("SELECT topic, reason, excerpt, at FROM rejected ORDER BY id")
        return [dict(zip(("topic", "reason", "excerpt", "at"), r)) for r in rows]


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


def _not_the_messages_fault(exc: Exception) -> bool:
    """A database that cannot be written (disk full, read-only, corrupt) fails every message alike:
    setting them aside would lose them; the loop ends unacknowledged and the process is restarted."""
    return isinstance(exc, (sqlite3.OperationalError, MemoryError)) or type(exc) is sqlite3.DatabaseError


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


def _utc(at: datetime) -> str:
    """A time as stored: UTC ISO-8601, so that its text sorts as the time does."""
    return at.astimezone(timezone.utc).isoformat()
