"""Dead letters: messages the collector refused or could not store, kept with their reason for people.

Bounded twice: rows older than the retention go, and the table never holds more than a cap, so a
sender flooding the broker with junk cannot fill the disk.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.clock import from_epoch

from .database import Database, statement

INSERT = statement(
    "INSERT INTO dead_letters (topic, reason, excerpt, received_at) VALUES (:topic, :reason, :excerpt, :received_at)"
)
NEWEST = statement(
    "SELECT topic, reason, excerpt, received_at FROM dead_letters ORDER BY id DESC LIMIT :limit"
)
COUNT = statement("SELECT COUNT(*) FROM dead_letters")
PRUNE_OLD = statement("DELETE FROM dead_letters WHERE received_at < :before")
PRUNE_OVER_CAP = statement(
    "DELETE FROM dead_letters WHERE id <= (SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET :keep)"
)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    reason: str
    excerpt: str
    received_at: datetime


class DeadLetters(Database):
    def add_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        with self.transaction():
            self._executemany(INSERT, [(d.topic, d.reason, d.excerpt, d.received_at.timestamp()) for d in letters])

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """The newest first."""
        return [DeadLetter(t, r, e, from_epoch(at)) for t, r, e, at in self._query(NEWEST, {"limit": limit})]

    def dead_letter_count(self) -> int:
        return int(self._scalar(COUNT))

    def prune_dead_letters(self, now: datetime, keep_for: timedelta, cap: int) -> None:
        """Drop dead letters older than ``keep_for`` and all but the newest ``cap``."""
        with self.transaction():
            self._execute(PRUNE_OLD, {"before": (now - keep_for).timestamp()})
            self._execute(PRUNE_OVER_CAP, {"keep": cap})
