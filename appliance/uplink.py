"""The uplink interface and the outbox pump that drains the store through it.

The pump is the store-and-forward half of S806: an outbox row is deleted only when the broker
has acknowledged it (MQTT QoS 1 PUBACK). A row published but not acknowledged when the
connection drops or the process dies is published again after reconnecting (or restarting), so
delivery is at-least-once on the wire and exactly-once at receivers, which deduplicate on
``(meter_id, seq)`` (``event_id`` for events).
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable, Iterator, Protocol

from .store import OutboxRow, Store


# The largest command payload taken in. A signed command is at most about 5.5 kB (base64 of a COSE
# envelope of at most 4 KiB, appliance/trust/cose.py); anything far larger is junk or an attack.
MAX_COMMAND_BYTES = 64 * 1024


class LinkProblem(str, Enum):
    """Why the link is down, in kinds a screen can explain (the ``detail`` text says it exactly)."""

    NONE = ""
    UNREACHABLE = "unreachable"  # no route, refused, timed out: the network or the broker is down
    ACCOUNT_REFUSED = "account_refused"  # wrong user name or password, or not allowed
    SERVER_CERT_REFUSED = "server_cert_refused"  # the broker's certificate is not from the expected CA
    CERT_EXPIRED = "cert_expired"  # this meter's certificate has expired
    CERT_REFUSED = "cert_refused"  # the broker refused this meter's certificate
    CLOSED = "closed"  # the broker closed the connection without saying why
    LOST = "lost"  # was connected, the connection dropped


@dataclass(frozen=True)
class LinkState:
    connected: bool
    detail: str = ""  # e.g. "broker refused the credentials: Not authorized"
    problem: LinkProblem = LinkProblem.NONE


class Uplink(Protocol):
    """A message link to the cloud. ``publish`` never blocks on the network.

    ``on_command`` is called (on the link's thread) with each command payload received for this
    meter; the composition root points it at :meth:`appliance.service.MeterService.submit_command`."""

    on_command: Callable[[bytes], None] | None

    def publish(self, topic: str, payload: bytes, on_ack: Callable[[], None],
                on_lost: Callable[[], None] | None = None) -> bool:
        """Queue a QoS 1 publish; ``on_ack`` runs (on any thread) when the broker acknowledges it, or
        ``on_lost`` when it never will (the connection was lost first; the link does not resend it).
        Returns False if the link cannot take it now (not connected)."""

    def state(self) -> LinkState: ...


class OutboxPump:
    """Moves released outbox rows to the uplink and deletes them once acknowledged.

    Its promises (docs/protocol.md): each topic's rows go out oldest first, and a row is never in
    flight twice on one connection; it is published again only when the link reports it lost (a
    new connection), or after a restart."""

    def __init__(self, store: Store, uplink: Uplink, *, window: int = 1000,
                 monotonic: Callable[[], float] = time.monotonic,
                 gate: Callable[[OutboxRow, object], bool] | None = None) -> None:
        """``gate(row, now)`` False holds a released row in the outbox for now (confirmation, S806)."""
        self.store = store
        self.gate = gate
        self.uplink = uplink
        self.window = window  # rows in flight at most: bounds memory during a long backlog
        self._monotonic = monotonic
        self._inflight: dict[int, OutboxRow] = {}
        self._acked: "queue.SimpleQueue[OutboxRow]" = queue.SimpleQueue()
        self._lost: "queue.SimpleQueue[OutboxRow]" = queue.SimpleQueue()
        self._news = threading.Event()  # set by every acknowledgement or loss, for settle()

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    def pump(self, now) -> int:
        """Record acknowledgements, then publish what is released. Returns rows delivered this call."""
        delivered = self._collect_acks()
        self._collect_lost()
        if not self.uplink.state().connected:
            return delivered
        room = self.window - len(self._inflight)
        blocked: set[str] = set()  # topics with a row held in this pass: nothing newer of theirs may pass it
        for row in self._candidates(now, blocked):
            if room <= 0 or not self._lost.empty():  # a loss reported mid-pass: resend the oldest first
                break
            if row.topic in blocked or row.id in self._inflight:
                continue
            if self.gate is not None and not self.gate(row, now):
                blocked.add(row.topic)  # held (confirmation): stays in the outbox, looked at again later
                continue
            if not self._send(row):
                break  # the link went down: the next pass starts again from the oldest
            room -= 1
        return delivered

    def _candidates(self, now, blocked: set[str]) -> Iterator[OutboxRow]:
        """Released rows in id order, from the oldest, leaving out topics blocked so far in this pass."""
        after, batch = 0, self.window + 64
        while True:
            rows = self.store.released(now, after, batch, exclude_topics=tuple(blocked))
            yield from rows
            if len(rows) < batch:
                return
            after = rows[-1].id

    def _send(self, row: OutboxRow) -> bool:
        if not self.uplink.publish(row.topic, row.payload, lambda r=row: self._report(self._acked, r),
                                   lambda r=row: self._report(self._lost, r)):
            return False
        self._inflight[row.id] = row
        return True

    def _report(self, box: "queue.SimpleQueue[OutboxRow]", row: OutboxRow) -> None:
        box.put(row)
        self._news.set()

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

    def _collect_lost(self) -> None:
        """Rows the link lost with its connection go back to the outbox's view: the next pass resends them."""
        while True:
            try:
                row = self._lost.get_nowait()
            except queue.Empty:
                return
            self._inflight.pop(row.id, None)

    def settle(self, timeout: float) -> int:
        """At a clean stop: wait up to ``timeout`` seconds for the rows in flight to be acknowledged,
        and record those that are, so a restart does not send them again. Returns rows recorded."""
        deadline = self._monotonic() + timeout
        recorded = self._collect_acks()
        self._collect_lost()
        while self._inflight and self.uplink.state().connected:
            left = deadline - self._monotonic()
            if left <= 0:
                break
            self._news.clear()
            if self._acked.empty() and self._lost.empty():
                self._news.wait(left)
            recorded += self._collect_acks()
            self._collect_lost()
        return recorded
