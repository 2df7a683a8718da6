"""The meter's contracts as the grid operator sees them: ``meters/{meter_id}/contracts``.

JP5159864B2 embodiment 3 lets the customer switch companies from a terminal; the customer's page
must then show what the meter holds, not what a server believes. So whenever the contracts in force
(56A) or the pending changes (56B/56C) differ from what was last published, the meter queues its
whole contract state once, through the same outbox as its readings (ordered, at least once,
surviving restarts). ``version`` grows with each state, so a receiver keeps only the newest.

The state names companies, data types, menus and switch times: nothing about the household.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from . import topics
from .api import contract_overview
from .clock import iso
from .store import Store
from .trust.document import switch_to_wire


def contract_state(store: Store) -> dict[str, Any]:
    """In force and pending, as published (without ``meter_id``, ``at`` and ``version``)."""
    overview = contract_overview(store)
    return {
        "in_force": [{"role": c.role.value, "company": c.company.code, "name": c.company.name,
                      "data_types": [t.value for t in c.data_types], "menu": c.menu,
                      "since": iso(c.since) if c.since else None} for c in overview.in_force],
        "pending": [{"id": p.id, "kind": p.kind.value, "action": p.action.value, "company": p.company.code,
                     "name": p.company.name, "switch": switch_to_wire(p.switch),
                     "data_types": [t.value for t in p.data_types], "menu": p.menu, "source": p.source}
                    for p in overview.pending],
    }


class ContractStatePublisher:
    """Queues the contract state when it changed since the last one queued (checked every step)."""

    def __init__(self, store: Store, meter_id: str) -> None:
        self.store = store
        self.meter_id = meter_id
        self._last: dict[str, Any] | None = None  # after a restart the state goes out once again

    def publish_if_changed(self, now: datetime) -> bool:
        state = contract_state(self.store)
        if state == self._last:
            return False
        with self.store.transaction():
            payload = {"meter_id": self.meter_id, "at": iso(now), "version": self.store.next_counter("contract_state"),
                       **state}
            self.store.enqueue(topics.contracts(self.meter_id), payload, now, None)
        self._last = state
        return True
