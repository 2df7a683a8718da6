"""The collector (data collection device 17): meters' MQTT traffic in, the MDMS and evidence out.

* stores interval readings, deduplicated on ``(meter_id, seq)`` by the database itself, so several
  collector processes on one ``$share`` group neither lose nor double-count;
* keeps, per meter, the newest window received and the newest status (``meter_comm``);
* gives the no-communication list (Table 2) once a window's grace period has passed.

Messages are acknowledged (QoS 1, manual ack) only after the batch holding them is committed: a
collector that dies loses nothing, the broker redelivers and the database drops the duplicates.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as paho

from appliance.clock import Clock, floor_to

from .model import Reading, StatusEvent
from .mqtt import disconnect, make_client, start_subscriber
from .payloads import MalformedPayload, decode_json, parse_batch, parse_reading, parse_status
from .storage import Storage

log = logging.getLogger(__name__)

TOPICS = ("meters/+/interval", "concentrators/+/batch", "meters/+/status")


@dataclass
class CollectorStats:
    messages: int = 0
    readings: int = 0  # readings parsed (batches count each reading)
    stored: int = 0  # new rows written
    duplicates: int = 0
    statuses: int = 0
    malformed: Counter = field(default_factory=Counter)  # reason -> count

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())


@dataclass(frozen=True)
class NoCommunicationList:
    """Table 2 for one window."""

    window_end: datetime
    meter_ids: list[str]


@dataclass
class Timing:
    period: timedelta = timedelta(minutes=30)  # the measurement interval
    grace: timedelta = timedelta(minutes=2)  # how late a reading may arrive and still count


class Collector:
    def __init__(self, storage: Storage, clock: Clock, timing: Timing | None = None,
                 batch_size: int = 2000, flush_interval_s: float = 0.2) -> None:
        self.storage = storage
        self.clock = clock
        self.timing = timing or Timing()
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self.stats = CollectorStats()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._readings: list[Reading] = []
        self._statuses: list[StatusEvent] = []
        self._acks: list[tuple[int, int]] = []  # (mid, qos) in arrival order: MQTT wants PUBACKs in order
        self._client: paho.Client | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._last_window: datetime | None = None

    # ----- message handling (also usable without MQTT)
    def handle(self, topic: str, payload: bytes) -> None:
        """Parse one message into the pending batch; malformed ones are logged, counted, dropped."""
        self.stats.messages += 1
        parts = topic.split("/")
        try:
            if len(parts) != 3:
                raise MalformedPayload("unexpected topic", topic)
            if parts[0] == "meters" and parts[2] == "status":
                if not payload:
                    return  # a cleared retained status
                event = parse_status(decode_json(payload), parts[1])
                with self._lock:
                    self._statuses.append(event)
                self.stats.statuses += 1
            elif parts[0] == "meters" and parts[2] == "interval":
                self._add_readings([parse_reading(decode_json(payload), parts[1])])
            elif parts[0] == "concentrators" and parts[2] == "batch":
                good = []
                for raw in parse_batch(decode_json(payload)):
                    try:
                        good.append(parse_reading(raw))
                    except MalformedPayload as exc:
                        self._malformed(topic, exc)
                self._add_readings(good)
            else:
                raise MalformedPayload("unexpected topic", topic)
        except MalformedPayload as exc:
            self._malformed(topic, exc)

    def _malformed(self, topic: str, exc: MalformedPayload) -> None:
        self.stats.malformed[exc.reason] += 1
        log.warning("dropped malformed message on %s: %s", topic, exc)

    def _add_readings(self, readings: list[Reading]) -> None:
        with self._lock:
            self._readings.extend(readings)
            full = len(self._readings) >= self.batch_size
        self.stats.readings += len(readings)
        if full and self._client is None:
            self.flush()  # without MQTT nobody else flushes on size

    def pending(self) -> tuple[list[Reading], list[StatusEvent]]:
        """Received but not yet committed (a copy)."""
        with self._lock:
            return list(self._readings), list(self._statuses)

    def flush(self) -> int:
        """Commit what is pending, then acknowledge it. Returns the number of new readings."""
        with self._flush_lock:
            with self._lock:
                readings, self._readings = self._readings, []
                statuses, self._statuses = self._statuses, []
                acks, self._acks = self._acks, []
            try:
                now = self.clock.now()
                new = self.storage.store_readings(readings, now) if readings else 0
                self.storage.store_statuses(statuses, now)
            except Exception:
                log.exception("storing %d readings failed; kept for the next flush", len(readings))
                with self._lock:
                    self._readings[:0], self._statuses[:0], self._acks[:0] = readings, statuses, acks
                return 0
            self.stats.stored += new
            self.stats.duplicates += len(readings) - new
            if self._client is not None:
                for mid, qos in acks:
                    self._client.ack(mid, qos)
            return new

    # ----- Table 2
    def latest_closed_window(self, now: datetime | None = None) -> datetime:
        """The end of the newest window whose grace period is over."""
        now = now or self.clock.now()
        return floor_to(now - self.timing.grace, self.timing.period)

    def no_communication(self, now: datetime | None = None) -> NoCommunicationList:
        end = self.latest_closed_window(now)
        self.flush()
        return NoCommunicationList(end, self.storage.no_communication(end))

    def poll_window(self) -> NoCommunicationList | None:
        """Table 2 once per window, right after its grace period."""
        end = self.latest_closed_window()
        if end == self._last_window:
            return None
        self._last_window = end
        return self.no_communication()

    # ----- MQTT
    def start(self, host: str, port: int, share_group: str | None = None, client_id: str | None = None,
              session_expiry_s: int = 3600, qos: int = 1) -> None:
        """Subscribe; a ``client_id`` makes the session persistent across restarts."""
        client = make_client(client_id, manual_ack=True)
        prefix = f"$share/{share_group}/" if share_group else ""

        def on_message(c, userdata, msg):
            try:
                self.handle(msg.topic, msg.payload)
            except Exception:  # a bug must not stop the collector; the message is acknowledged and logged
                log.exception("unexpected error on %s", msg.topic)
            with self._lock:
                if msg.qos:
                    self._acks.append((msg.mid, msg.qos))
                full = len(self._readings) >= self.batch_size
            if full:
                self.flush()

        client.on_message = on_message
        self._client = client
        self._stop.clear()
        self._flusher = threading.Thread(target=self._flush_loop, name="collector-flush", daemon=True)
        self._flusher.start()
        start_subscriber(client, host, port, [(prefix + t, qos) for t in TOPICS],
                         session_expiry_s=session_expiry_s if client_id else 0)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self.flush()

    def stop(self, flush: bool = True) -> None:
        """``flush=False`` is a crash: whatever is pending is neither stored nor acknowledged."""
        self._stop.set()
        if self._flusher:
            self._flusher.join()
        if flush:
            self.flush()
        if self._client:
            disconnect(self._client)
        self._client = None
