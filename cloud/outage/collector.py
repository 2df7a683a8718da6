"""The collector (data collection device 17): meters' MQTT traffic in, the MDMS and evidence out.

* stores interval readings, deduplicated on ``(meter_id, seq)`` by the database itself, so several
  collector processes on one ``$share`` group neither lose nor double-count;
* keeps, per meter, the newest window received and the newest status (``meter_comm``);
* gives the no-communication list (Table 2) once a window's grace period has passed.

Messages are acknowledged (QoS 1, manual ack) only after the batch holding them is committed: a
collector that dies loses nothing, the broker redelivers and the database drops the duplicates.
A full batch is committed by the flush thread while the MQTT thread goes on receiving the next one
(the database works while Python parses); only when ``FLUSH_AHEAD`` batches wait does the MQTT thread
stop to commit them itself, which holds the broker back and bounds the memory.
"""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as paho

from appliance.clock import Clock, floor_to
from appliance.config import MqttSection
from appliance.wire import CLOCK_SKEW

from .model import MeterAlertEvent, Reading, StatusEvent
from ..mqtt import disconnect, make_client, start_subscriber
from .notices import meter_alert
from .payloads import (Intake, MalformedPayload, excerpt, parse_alert, parse_batch, parse_contract_state,
                       parse_reading, parse_status, printable, topic_meter_id)
from .storage import Storage
from .storage.dead_letters import DeadLetter

log = logging.getLogger(__name__)

TOPICS = ("meters/+/interval", "concentrators/+/batch", "meters/+/status", "meters/+/alerts", "meters/+/contracts")
MAX_TOPIC = 200  # characters of a topic kept with a dead letter
PRUNE_EVERY = timedelta(minutes=1)
FLUSH_AHEAD = 4  # batches received ahead of the database before the MQTT thread waits for it
BATCH_SIZE = 2000  # messages committed together (and only then acknowledged)
# A message is acknowledged once its batch is committed, so the broker must let this many go unacknowledged
# to one collector (MQTT 5 Receive Maximum, EMQX's max_inflight); fewer, and the collector waits for its
# flush timer instead of a full batch.
INFLIGHT_NEEDED = FLUSH_AHEAD * BATCH_SIZE
MAX_RECEIVE = 65535  # MQTT 5's largest Receive Maximum


@dataclass(frozen=True)
class IntakeConfig:
    """What the collector accepts, and how long it keeps what it refused."""

    skew: timedelta = CLOCK_SKEW  # how far ahead of this clock a meter's time may be
    dead_letter_keep: timedelta = timedelta(days=30)
    dead_letter_cap: int = 100_000


class LogGate:
    """Lets one log line per kind through per ``every``: a flood of junk must not flood the log."""

    def __init__(self, every: timedelta = timedelta(minutes=1)) -> None:
        self.every = every
        self._last: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def open(self, kind: str, now: datetime) -> bool:
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.every:
                return False
            if len(self._last) > 1000:  # reasons are a small fixed set; bound it anyway
                self._last.clear()
            self._last[kind] = now
            return True


@dataclass
class CollectorStats:
    messages: int = 0
    readings: int = 0  # readings parsed (batches count each reading)
    stored: int = 0  # new rows written
    duplicates: int = 0
    statuses: int = 0
    alerts: int = 0  # meters' alerts for their customers
    contract_states: int = 0  # meters' contracts in force and pending, for the customers' pages
    malformed: Counter = field(default_factory=Counter)  # refused, reason -> count
    dead_letters: int = 0  # written to the dead-letter table

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


def _reading_letter(r: Reading, reason: str, now: datetime, topic: str | None = None) -> DeadLetter:
    """A valid reading set aside whole (at most 16 KiB), so that it can be replayed by hand."""
    body = r.payload if isinstance(r.payload, str) else json.dumps(r.payload)
    return DeadLetter(topic or f"meters/{r.meter_id}/interval", reason, body, now)


def _status_letter(e: StatusEvent, reason: str, now: datetime) -> DeadLetter:
    return DeadLetter(f"meters/{e.meter_id}/status", reason, json.dumps({"state": e.state.value, "at": e.at.isoformat()}),
                      now)


@dataclass(frozen=True)
class NoCommunicationList:
    """Table 2 for one window."""

    window_end: datetime
    meter_ids: list[str]


@dataclass(frozen=True)
class WindowClosed:
    """A window's grace period is over: how many meters are on its Table 2."""

    window_end: datetime
    silent: int


@dataclass
class Timing:
    period: timedelta = timedelta(minutes=30)  # the measurement interval
    grace: timedelta = timedelta(minutes=2)  # how late a reading may arrive and still count


class Collector:
    def __init__(self, storage: Storage, clock: Clock, timing: Timing | None = None,
                 batch_size: int = BATCH_SIZE, flush_interval_s: float = 0.2, intake: IntakeConfig | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.timing = timing or Timing()
        self.intake = intake or IntakeConfig()
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.stats = CollectorStats()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._readings: list[Reading] = []
        self._batched: list[tuple[str, list[Reading]]] = []  # (concentrator id, its readings): vouched at flush
        self._batched_readings = 0  # readings in _batched, kept as they come: counted on every message
        self._alerts: list[MeterAlertEvent] = []  # for the customers: e-mailed through the notifications
        self._statuses: list[StatusEvent] = []
        self._contracts: list[tuple[str, int, datetime, dict]] = []
        self._dead: list[DeadLetter] = []
        self._acks: list[tuple[int, int]] = []  # (mid, qos) in arrival order: MQTT wants PUBACKs in order
        self._client: paho.Client | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # a batch is full: the flush thread commits it now
        self._flusher: threading.Thread | None = None
        self._last_window: datetime | None = None
        self._log_gate = LogGate()
        self._pruned_at = datetime.min.replace(tzinfo=clock.now().tzinfo)
        self.failed = threading.Event()  # set when the collector cannot go on: its process must exit non-zero
        self.failure = ""

    # ----- message handling (also usable without MQTT)
    def handle(self, topic: str, payload: bytes) -> None:
        """Validate one message into the pending batch. Nothing a sender does raises here: a refused
        message becomes a dead letter (reason, bounded excerpt), counted and logged at most once a
        minute per reason, and is acknowledged with the batch like any other."""
        self.stats.messages += 1
        intake = Intake(self.clock.now(), self.intake.skew)
        parts = topic.split("/")
        try:
            if len(parts) != 3:
                raise MalformedPayload("unexpected topic")
            if parts[0] == "meters" and parts[2] == "interval":  # the bulk of the traffic: tested first
                self._add_readings([parse_reading(payload, intake, parts[1])])
            elif parts[0] == "meters" and parts[2] == "status":
                if not payload:
                    return  # a cleared retained status
                event = parse_status(payload, parts[1], intake)
                with self._lock:
                    self._statuses.append(event)
                self.stats.statuses += 1
            elif parts[0] == "meters" and parts[2] == "alerts":
                alert = parse_alert(payload, parts[1], intake)
                with self._lock:
                    self._alerts.append(alert)
                self.stats.alerts += 1
            elif parts[0] == "meters" and parts[2] == "contracts":
                state = parse_contract_state(payload, parts[1], intake)
                with self._lock:
                    self._contracts.append(state)
                self.stats.contract_states += 1
            elif parts[0] == "concentrators" and parts[2] == "batch":
                good = []
                for raw in parse_batch(payload):
                    try:
                        good.append(parse_reading(raw, intake))
                    except MalformedPayload as exc:
                        self._refuse(topic, raw, exc.reason, str(exc))
                self._add_readings(good, concentrator=topic_meter_id(parts[1]))
            else:
                raise MalformedPayload("unexpected topic")
        except MalformedPayload as exc:
            self._refuse(topic, payload, exc.reason, str(exc))
        except Exception as exc:  # a bug met by a sender's message: set it aside, keep going
            self._refuse(topic, payload, "internal error", repr(exc)[:200], exc_info=True)

    def _refuse(self, topic: str, payload: bytes, reason: str, detail: str, exc_info: bool = False) -> None:
        self.stats.malformed[reason] += 1
        letter = DeadLetter(printable(topic, MAX_TOPIC), printable(reason, 80), excerpt(payload), self.clock.now())
        with self._lock:
            self._dead.append(letter)
        if self._log_gate.open(reason, letter.received_at):
            log.warning("refused a message on %s: %s (this kind is logged once a minute; all go to dead_letters)",
                        letter.topic, printable(detail, 300), exc_info=exc_info)

    def _add_readings(self, readings: list[Reading], concentrator: str | None = None) -> None:
        with self._lock:
            if concentrator is None:
                self._readings.extend(readings)
            elif readings:
                self._batched.append((concentrator, readings))
                self._batched_readings += len(readings)
        self.stats.readings += len(readings)
        if self._client is None and self._pending_count() >= self.batch_size:
            self.flush()  # without MQTT nobody else flushes on size

    def _pending_count(self) -> int:
        return len(self._readings) + self._batched_readings + len(self._dead) + len(self._alerts) + len(self._contracts)

    def pending(self) -> tuple[list[Reading], list[StatusEvent]]:
        """Received but not yet committed (a copy)."""
        with self._lock:
            return list(self._readings) + [r for _, b in self._batched for r in b], list(self._statuses)

    def flush(self) -> int:
        """Commit what is pending, then acknowledge it. Returns the number of new readings.

        A batch the database refuses is tried again row by row: the rows it still refuses become dead
        letters and the rest are stored. Only when even that fails (the database is down) is the batch
        kept for the next flush."""
        with self._flush_lock:
            with self._lock:
                readings, self._readings = self._readings, []
                batched, self._batched = self._batched, []
                self._batched_readings = 0
                alerts, self._alerts = self._alerts, []
                contracts, self._contracts = self._contracts, []
                statuses, self._statuses = self._statuses, []
                dead, self._dead = self._dead, []
                acks, self._acks = self._acks, []
            now = self.clock.now()
            try:
                new = self._store(readings, batched, statuses, list(dead), now)
                for alert in alerts:  # a redelivered alert is one notice: its key is the meter's alert id
                    meter_alert(self.storage, alert, now)
                self.storage.save_contract_states(contracts, now)
            except Exception:
                log.exception("storing %d readings failed; kept for the next flush",
                              len(readings) + sum(len(b) for _, b in batched))
                with self._lock:
                    self._readings[:0], self._statuses[:0], self._dead[:0], self._acks[:0] = readings, statuses, dead, acks
                    self._batched[:0] = batched
                    self._batched_readings += sum(len(b) for _, b in batched)
                    self._alerts[:0] = alerts
                    self._contracts[:0] = contracts
                return 0
            self.stats.stored += new
            if self._client is not None:
                for mid, qos in acks:
                    self._client.ack(mid, qos)
            if now - self._pruned_at >= PRUNE_EVERY:
                self._pruned_at = now
                self.storage.prune_dead_letters(now, self.intake.dead_letter_keep, self.intake.dead_letter_cap)
                self.storage.ensure_partitions(now)  # tomorrow's partition exists before its first reading
                self.storage.drop_old_partitions(now)
            return new

    def _store(self, readings: list[Reading], batched: list[tuple[str, list[Reading]]], statuses: list[StatusEvent],
               dead: list[DeadLetter], now: datetime) -> int:
        readings = readings + self._vouched(batched, dead, now)
        readings, statuses = self._since_commissioning(readings, statuses, dead, now)
        readings = self._in_kept_days(readings, dead, now)
        new = 0
        try:
            new = self.storage.store_readings(readings, now) if readings else 0
            self.stats.duplicates += len(readings) - new
            readings = []
            self.storage.store_statuses(statuses, now)
        except Exception as exc:
            log.warning("storing a batch failed (%r); trying it row by row", exc)
            new += self._one_by_one(readings, statuses, dead, now)
        self.storage.add_dead_letters(dead)
        self.stats.dead_letters += len(dead)
        return new

    def _vouched(self, batched: list[tuple[str, list[Reading]]], dead: list[DeadLetter], now: datetime) -> list[Reading]:
        """The batched readings of meters registered under the concentrator that sent them. A
        concentrator speaks only for its own meters: one holding another's (or an unregistered one)
        is broken or forged, and those readings are set aside. One query per flush."""
        meters = sorted({r.meter_id for _, b in batched for r in b})
        home = self.storage.concentrator_of(meters) if meters else {}
        kept = []
        for concentrator, readings in batched:
            for r in readings:
                if home.get(r.meter_id) == concentrator:
                    kept.append(r)
                else:
                    self._set_aside(dead, _reading_letter(r, "meter not registered under the concentrator", now,
                                                          topic=f"concentrators/{concentrator}/batch"))
        return kept

    def _since_commissioning(self, readings: list[Reading], statuses: list[StatusEvent], dead: list[DeadLetter],
                             now: datetime) -> tuple[list[Reading], list[StatusEvent]]:
        """Set aside what a meter stamped before its registered commissioning: a broken or forged clock.
        One query per flush, for the meters in it (most registrations do not say; those pass)."""
        meters = {r.meter_id for r in readings} | {e.meter_id for e in statuses}
        since = self.storage.commissioning(sorted(meters)) if meters else {}
        if not since:
            return readings, statuses
        kept_readings, kept_statuses = [], []
        for r in readings:
            if r.meter_id in since and r.interval_start < since[r.meter_id]:
                self._set_aside(dead, _reading_letter(r, "interval_start before commissioning", now))
            else:
                kept_readings.append(r)
        for e in statuses:
            if e.meter_id in since and e.at < since[e.meter_id]:
                self._set_aside(dead, _status_letter(e, "at before commissioning", now))
            else:
                kept_statuses.append(e)
        return kept_readings, kept_statuses

    def _in_kept_days(self, readings: list[Reading], dead: list[DeadLetter], now: datetime) -> list[Reading]:
        """Set aside readings for a day the store keeps no partition for (far past or far ahead), whole,
        so they can be replayed elsewhere; never dropped silently."""
        kept = []
        refusals: dict[datetime, str | None] = {}  # a flush is mostly one window: judge each end once
        for r in readings:
            if r.interval_end not in refusals:
                refusals[r.interval_end] = self.storage.partition_refusal(r.interval_end, now)
            if reason := refusals[r.interval_end]:
                self._set_aside(dead, _reading_letter(r, reason, now))
            else:
                kept.append(r)
        return kept

    def _set_aside(self, dead: list[DeadLetter], letter: DeadLetter) -> None:
        dead.append(letter)
        self.stats.malformed[letter.reason] += 1
        if self._log_gate.open(letter.reason, letter.received_at):
            log.warning("refused a message on %s: %s (this kind is logged once a minute; all go to dead_letters)",
                        letter.topic, letter.reason)

    def _one_by_one(self, readings: list[Reading], statuses: list[StatusEvent], dead: list[DeadLetter],
                    now: datetime) -> int:
        """Store each row on its own; the ones refused join ``dead`` (a valid reading whole, to replay)."""
        new = 0
        for r in readings:
            try:
                n = self.storage.store_readings([r], now)
            except Exception as exc:
                dead.append(_reading_letter(r, "storage refused", now))
                self._note_store_failure(exc, now)
                continue
            new += n
            self.stats.duplicates += 1 - n
        for e in statuses:
            try:
                self.storage.store_statuses([e], now)
            except Exception as exc:
                dead.append(_status_letter(e, "storage refused", now))
                self._note_store_failure(exc, now)
        return new

    def _note_store_failure(self, exc: Exception, now: datetime) -> None:
        self.stats.malformed["storage refused"] += 1
        if self._log_gate.open("storage refused", now):
            log.error("the database refused a row; set aside as a dead letter: %r", exc)

    # ----- Table 2
    def latest_closed_window(self, now: datetime | None = None) -> datetime:
        """The end of the newest window whose grace period is over."""
        now = now or self.clock.now()
        return floor_to(now - self.timing.grace, self.timing.period)

    def no_communication(self, now: datetime | None = None) -> NoCommunicationList:
        end = self.latest_closed_window(now)
        self.flush()
        return NoCommunicationList(end, self.storage.no_communication(end))

    def poll_window(self) -> WindowClosed | None:
        """Once per window, right after its grace period: how many meters are on its Table 2 (a count:
        after a collector outage every meter is, and the list would cost memory per meter)."""
        end = self.latest_closed_window()
        if end == self._last_window:
            return None
        self._last_window = end
        self.flush()
        return WindowClosed(end, self.storage.no_communication_count(end))

    # ----- MQTT
    def start(self, broker: MqttSection, share_group: str | None = None, persistent: bool = False,
              session_expiry_s: int = 3600, qos: int = 1, client_id: str | None = None) -> None:
        """Subscribe with ``broker``'s account; ``persistent``: the broker keeps the session (the
        subscription and what arrives meanwhile) across restarts. On a broker with accounts the
        session is the account's; ``client_id`` matters only on one without."""
        client = make_client(broker, client_id, manual_ack=True)
        prefix = f"$share/{share_group}/" if share_group else ""

        def on_message(c, userdata, msg):
            try:
                self.handle(msg.topic, msg.payload)  # never raises for what a sender did
                if msg.qos:
                    with self._lock:
                        self._acks.append((msg.mid, msg.qos))
                pending = self._pending_count()  # unlocked: only says when to flush, a flush takes all there is
                if pending >= FLUSH_AHEAD * self.batch_size:
                    self.flush()  # the database is behind: wait for it (the broker holds the rest)
                elif pending >= self.batch_size:
                    self._wake.set()
            except BaseException as exc:  # this thread must not die silently: fail loudly instead
                self.fail(f"the MQTT thread cannot go on: {exc!r}")
                raise

        client.on_message = on_message
        self._client = client
        self._stop.clear()
        self._wake.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="collector-flush", daemon=True)
        self._flusher.start()
        start_subscriber(client, broker, [(prefix + t, qos) for t in TOPICS],
                         session_expiry_s=session_expiry_s if persistent else 0, on_failure=self.fail,
                         receive_maximum=min(FLUSH_AHEAD * self.batch_size, MAX_RECEIVE))

    def fail(self, reason: str) -> None:
        """The collector cannot go on (its MQTT thread is gone, its subscription refused)."""
        log.critical("collector failed: %s", reason)
        self.failure = reason
        self.failed.set()

    @property
    def healthy(self) -> bool:
        """False once the collector failed or its network thread ended without :meth:`stop`."""
        thread = getattr(self._client, "_thread", None)  # paho's loop_start thread
        return not self.failed.is_set() and (self._client is None or thread is None or thread.is_alive())

    def _flush_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            if not self._stop.is_set():
                self.flush()

    def stop(self, flush: bool = True) -> None:
        """``flush=False`` is a crash: whatever is pending is neither stored nor acknowledged."""
        self._stop.set()
        self._wake.set()
        if self._flusher:
            self._flusher.join()
        if flush:
            self.flush()
        if self._client:
            disconnect(self._client)
        self._client = None
