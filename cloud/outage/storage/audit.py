"""The audit log: every operator input, kept for people (viewable on the operations site). Rows are
only ever added; nothing in the project updates or deletes them."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.clock import from_epoch

from .database import Database, statement

INSERT = statement("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (:at, :actor, :action, :target, :detail)")
NEWEST = statement("SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT :limit OFFSET :offset")
COUNT = statement("SELECT COUNT(*) FROM audit_log")


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class AuditLog(Database):
    def audit(self, at: datetime, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        with self.transaction():
            self._execute(INSERT, {"at": at.timestamp(), "actor": actor, "action": action, "target": target,
                                   "detail": json.dumps(detail, ensure_ascii=False, default=str)})

    def audit_entries(self, limit: int = 100, offset: int = 0) -> list[AuditEntry]:
        """The newest first."""
        return [AuditEntry(from_epoch(at), actor, action, target, json.loads(detail))
                for at, actor, action, target, detail in self._query(NEWEST, {"limit": limit, "offset": offset})]

    def audit_count(self) -> int:
        return int(self._scalar(COUNT))
