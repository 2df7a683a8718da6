"""Distribution automation input: the grid's own word that an area lost or regained power."""
from __future__ import annotations

from datetime import datetime

from appliance.clock import from_epoch

from ..model import Area, DaEvent
from .database import Database, statement

INSERT = statement(
    "INSERT INTO da_events (area, kind, at, reference, received_at) VALUES (:area, :kind, :at, :reference, :received_at)"
)
ALL = statement("SELECT area, kind, at, reference FROM da_events ORDER BY at, id")
LATEST = statement("SELECT area, kind, at, reference FROM da_events ORDER BY id DESC LIMIT :limit")
IN_AREA = statement("SELECT area, kind, at, reference FROM da_events WHERE area = :area ORDER BY at, id")


class DaEvents(Database):
    def add_da_event(self, event: DaEvent, received_at: datetime) -> None:
        with self.transaction():
            self._execute(INSERT, {"area": event.area.key, "kind": event.kind, "at": event.at.timestamp(),
                                   "reference": event.reference, "received_at": received_at.timestamp()})

    def da_events(self, area: Area | None = None) -> list[DaEvent]:
        rows = self._query(IN_AREA, {"area": area.key}) if area else self._query(ALL)
        return [DaEvent(Area.from_key(a), k, from_epoch(t), ref) for a, k, t, ref in rows]

    def latest_da_events(self, limit: int) -> list[DaEvent]:
        """The newest events as they arrived, newest first (the notice column)."""
        return [DaEvent(Area.from_key(a), k, from_epoch(t), ref) for a, k, t, ref in self._query(LATEST, {"limit": limit})]
