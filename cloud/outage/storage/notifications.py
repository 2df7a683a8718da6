"""Notifications: an outbox the manager fills and notifiers drain, each row sent at most once."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, column, or_, select, table

from appliance.clock import from_epoch, to_epoch

from ..model import Event, Notification, NotificationState
from .database import Database, chunks, statement

WAITING = (NotificationState.PENDING.value, NotificationState.RETRY.value)
CLAIMED = ("id", "key", "event", "meter_id", "outage_id", "attempts", "not_before", "detail")

_n = table("notifications", *(column(c) for c in (*CLAIMED, "state", "urgent", "claimed_until")))


def _select_due(urgent_only: bool) -> Select:
    """Due rows, and rows whose claim lapsed (a notifier that died); others' claimed rows are skipped."""
    c = _n.c
    due = or_(
        and_(c.state.in_(bindparam("waiting", expanding=True)), c.not_before <= bindparam("now")),
        and_(c.state == bindparam("sending"), c.claimed_until < bindparam("now")),
    )
    query = (select(*(c[name] for name in CLAIMED)).where(due).order_by(c.urgent.desc(), c.not_before, c.id)
             .limit(bindparam("limit")).with_for_update(skip_locked=True))
    return query.where(c.urgent == 1) if urgent_only else query


SELECT_DUE = {urgent_only: _select_due(urgent_only) for urgent_only in (False, True)}
INSERT = statement(
    "INSERT INTO notifications (key, event, meter_id, outage_id, urgent, state, not_before, created_at, detail) "
    "VALUES (:key, :event, :meter_id, :outage_id, :urgent, :state, :not_before, :created_at, :detail) "
    "ON CONFLICT (key) DO NOTHING"
)
SUPERSEDE = statement(
    "UPDATE notifications SET state = :superseded WHERE outage_id = :outage_id AND state IN :waiting "
    "AND event IN :events AND meter_id IN :meter_ids AND key NOT LIKE :keep",
    "waiting", "events", "meter_ids",
)
CLAIM = statement(
    "UPDATE notifications SET state = :sending, claimed_by = :worker, claimed_until = :until, attempts = attempts + 1 "
    "WHERE id IN :ids",
    "ids",
)
FINISH = statement(
    "UPDATE notifications SET state = :state, sent_at = :sent_at, last_error = :error, "
    "not_before = COALESCE(:retry_at, not_before), claimed_until = NULL "
    "WHERE id = :id AND claimed_by = :worker AND state = :sending"
)
OF_METER = statement(
    "SELECT event, state, outage_id, created_at, sent_at, attempts, detail FROM notifications WHERE meter_id = :meter_id "
    "ORDER BY id DESC LIMIT :limit")
STATES = statement("SELECT key, event, state, attempts FROM notifications ORDER BY id")
COUNTS = statement("SELECT state, COUNT(*) FROM notifications GROUP BY state")


@dataclass(frozen=True)
class SentRecord:
    """One e-mail to one customer, as the operators see it (Fig. 10's お客様公開情報)."""

    event: Event
    state: NotificationState
    outage_id: int | None
    created_at: datetime
    sent_at: datetime | None  # when the SMTP server took it
    attempts: int
    detail: dict[str, Any] = field(default_factory=dict)  # what the e-mail said beyond the outage (a security error's text)


class Notifications(Database):
    def add_notifications(self, items: Sequence[tuple[str, Event, str, int | None, bool, datetime, dict[str, Any]]], now: datetime) -> int:
        """(key, event, meter_id, outage_id, urgent, not_before, detail) rows; an existing key is kept,
        which is what makes "one e-mail per customer per event" hold across processes and restarts."""
        if not items:
            return 0
        rows = [
            (key, ev.value, meter, oid, int(urgent), NotificationState.PENDING.value, nb.timestamp(), now.timestamp(),
             json.dumps(detail, ensure_ascii=False))
            for key, ev, meter, oid, urgent, nb, detail in items
        ]
        with self.transaction():
            return self._executemany(INSERT, rows)

    def supersede(self, outage_id: int, meter_ids: Sequence[str], events: Sequence[Event], keep_key_prefix: str = "") -> None:
        """Drop not-yet-sent updates that a newer one replaces."""
        params = {"superseded": NotificationState.SUPERSEDED.value, "outage_id": outage_id, "waiting": WAITING,
                  "events": [e.value for e in events], "keep": keep_key_prefix + "%"}
        with self.transaction():
            for chunk in chunks(list(meter_ids)):
                self._execute(SUPERSEDE, {**params, "meter_ids": chunk})

    def claim_notifications(self, worker: str, now: datetime, lease_s: float, limit: int, urgent_only: bool) -> list[Notification]:
        """Atomically take due e-mails for one notifier: no two processes ever hold the same row.

        A row left in ``sending`` by a crashed notifier is taken again once its lease ends."""
        t = now.timestamp()
        sending = NotificationState.SENDING.value
        with self.transaction():
            rows = self._query(SELECT_DUE[urgent_only], {"waiting": WAITING, "now": t, "sending": sending, "limit": limit})
            if not rows:
                return []
            self._execute(CLAIM, {"sending": sending, "worker": worker, "until": t + lease_s, "ids": [r[0] for r in rows]})
        return [
            Notification(
                id=int(i), key=k, event=Event(e), meter_id=m, outage_id=None if o is None else int(o), attempts=int(a) + 1,
                not_before=from_epoch(nb), detail=json.loads(d or "{}"),
            )
            for i, k, e, m, o, a, nb, d in rows
        ]

    def finish_notification(self, notification_id: int, worker: str, state: NotificationState, now: datetime,
                            error: str | None = None, retry_at: datetime | None = None) -> bool:
        """Record the outcome, only if this worker still holds the claim."""
        params = {"state": state.value, "sent_at": now.timestamp() if state is NotificationState.SENT else None,
                  "error": error, "retry_at": to_epoch(retry_at), "id": notification_id, "worker": worker,
                  "sending": NotificationState.SENDING.value}
        with self.transaction():
            return self._execute(FINISH, params).rowcount > 0

    def notifications_of(self, meter_id: str, limit: int = 50) -> list[SentRecord]:
        """What this customer was sent (or is about to be), newest first."""
        return [SentRecord(Event(e), NotificationState(s), None if o is None else int(o), from_epoch(c), from_epoch(t), int(a),
                           json.loads(d))
                for e, s, o, c, t, a, d in self._query(OF_METER, {"meter_id": meter_id, "limit": limit})]

    def notification_states(self) -> list[tuple[str, str, str, int]]:
        """(key, event, state, attempts) of every notification, for operators and tests."""
        return [(k, e, s, int(a)) for k, e, s, a in self._query(STATES)]

    def notification_counts(self) -> dict[str, int]:
        return {s: int(n) for s, n in self._query(COUNTS)}
