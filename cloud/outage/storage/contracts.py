"""Each meter's contract state (schema step 6): the newest the meter published, whatever order the
broker delivered them in."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from appliance.clock import from_epoch

from .database import Database, statement

UPSERT = statement(
    "INSERT INTO meter_contracts (meter_id, version, at, received_at, body) "
    "VALUES (:meter_id, :version, :at, :received_at, :body) "
    "ON CONFLICT (meter_id) DO UPDATE SET version = excluded.version, at = excluded.at, "
    "received_at = excluded.received_at, body = excluded.body WHERE meter_contracts.version < excluded.version")
ONE = statement("SELECT version, at, received_at, body FROM meter_contracts WHERE meter_id = :meter_id")


@dataclass(frozen=True)
class MeterContracts:
    meter_id: str
    version: int
    at: datetime  # the meter's time of the state
    received_at: datetime
    in_force: list[dict[str, Any]]
    pending: list[dict[str, Any]]


class ContractStates(Database):
    def save_contract_states(self, states: list[tuple[str, int, datetime, dict[str, Any]]], now: datetime) -> None:
        """``(meter_id, version, at, {"in_force", "pending"})``; an older version than the stored one is ignored."""
        if not states:
            return
        with self.transaction():
            for meter_id, version, at, body in states:
                self._execute(UPSERT, {"meter_id": meter_id, "version": version, "at": at.timestamp(),
                                       "received_at": now.timestamp(), "body": json.dumps(body, ensure_ascii=False)})

    def contract_state(self, meter_id: str) -> MeterContracts | None:
        rows = self._query(ONE, {"meter_id": meter_id})
        if not rows:
            return None
        version, at, received_at, body = rows[0]
        data = json.loads(body)
        return MeterContracts(meter_id, int(version), from_epoch(at), from_epoch(received_at), data["in_force"],
                              data["pending"])
