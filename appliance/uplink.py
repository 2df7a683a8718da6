"""The uplink interface and the outbox pump that drains the store through it.

The pump is the store-and-forward half of S806: an outbox row is deleted only when the broker
has acknowledged it (MQTT QoS 1 PUBACK). A row published but not acknowledged when the
connection drops or the process dies is published again later, so delivery is at-least-once on
the wire and exactly-once at receivers, which deduplicate on ``(meter_id, seq)`` (``event_id``
for events).
"""
from __future__ import annotations

import queue
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from .store import OutboxRow, Store


@dataclass(frozen=True)
class LinkState:
    connected: bool
    detail: str = ""  # e.g. "broker refused the credentials: Not authorized"


class Uplink(Protocol):
    """A message link to the cloud. ``publish`` never blocks on the network.

    ``on_command`` is called (on the link's thread) with each command payload received for this
    meter; the composition root points it at :meth:`appliance.service.MeterService.submit_command`."""

    on_command: Callable[[bytes], None] | None

    def publish(self, topic: str, payload: bytes, on_ack: Callable[[], None]) -> bool:
        """Queue a QoS 1 publish; ``on_ack`` runs (on any thread) when the broker acknowledges it.
        Returns False if the link cannot take it now (not connected)."""

    def state(self) -> LinkState: ...


class OutboxPump:
    """Moves released outbox rows to the uplink and deletes them once acknowledged."""

    def __init__(self, store: Store, uplink: Uplink, *, window: int = 1000, resend_after: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 gate: Callable[[OutboxRow, object], bool] | None = None) -> None:
        """``gate(row, now)`` False holds a released row in the outbox for now (confirmation, S806)."""
        self.store = store
        self.gate = gate
        self.uplink = uplink
        self.window = window  # rows in flight at most: bounds memory during a long backlog
        self.resend_after = resend_after
        self._monotonic = monotonic
        self._inflight: dict[int, tuple[OutboxRow, float]] = {}
        self._acked: "queue.SimpleQueue[OutboxRow]" = queue.SimpleQueue()
        self._cursor = 0  # highest row id handed to the uplink in this pass

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def pump(self, now) -> int:
        """Record acknowledgements, then publish what is released. Returns rows delivered this call."""
        delivered = self._collect_acks()
        if not self.uplink.state().connected:
            return delivered
        self._resend_stale()
        room = self.window - len(self._inflight)
        if room <= 0:
            return delivered
        rows = self.store.released(now, self._cursor, room)
        if not rows and self._cursor:
            self._cursor = 0  # rows released late (company send intervals) may sit below the cursor
            rows = [r for r in self.store.released(now, 0, room + len(self._inflight)) if r.id not in self._inflight]
            rows = rows[:room]
        for row in rows:
            if self.gate is not None and not self.gate(row, now):
                self._cursor = max(self._cursor, row.id)  # held: stays in the outbox, looked at again later
                continue
            if not self._send(row):
                break
        return delivered

    def _send(self, row: OutboxRow) -> bool:
        if not self.uplink.publish(row.topic, row.payload, lambda r=row: self._acked.put(r)):
            return False
        self._inflight[row.id] = (row, self._monotonic())
        self._cursor = max(self._cursor, row.id)
        return True

    def _collect_acks(self) -> int:
        done: list[OutboxRow] = []
        while True:
            try:
                row = self._acked.get_nowait()
            except queue.Empty:
                break
            if self._inflight.pop(row.id, None) is not None:
                done.append(row)
        self.store.mark_delivered(done)
        return len(done)

    def _resend_stale(self) -> None:
        """A row unacknowledged for long (lost across a reconnect) is published again."""
        limit = self._monotonic() - self.resend_after
        for row_id, (row, sent) in list(self._inflight.items()):
            if sent < limit:
                del self._inflight[row_id]
                self._send(row)

    def forget_in_flight(self) -> None:
        """After a reconnect with a fresh session nothing in flight will be acknowledged: send again."""
        self._inflight.clear()
        self._cursor = 0
