"""S803/S804: decide which pending contract changes are due, and apply each one exactly once.

A change is applied in one transaction together with its bookkeeping (``last_applied``) and its
events, so a restart neither loses nor repeats it. Rules for time:

* **Late** (the meter was off, or the service was killed, across a switch time): on start the
  change is applied at once; the events carry both the scheduled and the effective time. The
  reading that spans the switch time stays with the company whose contract was in force when it
  was measured.
* **Weekly rules**: missed occurrences collapse into the latest one, applied once.
* **Clock stepped back**: an occurrence at or before the last one applied is never applied again.
* **Clock stepped forward**: like being off: the latest due occurrence of each change applies.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from .clock import iso
from .domain import Action, Contract, ContractChange, Role
from .schedule import latest_due
from .sending import Sender
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueChange:
    change: ContractChange
    occurrence: datetime  # the scheduled switch moment


class Switcher:
    def __init__(self, store: Store, sender: Sender) -> None:
        self.store = store
        self.sender = sender

    def due(self, now: datetime) -> list[DueChange]:
        """S803: every pending change whose switch time has come, in switch-time order."""
        out = []
        for change, book in self.store.changes(("pending",)):
            # A weekly rule starts with its first occurrence after it was stored, not retroactively.
            since = book["last_applied"] or (change.received_at if change.switch.weekly else None)
            occurrence = latest_due(change.switch, now, since)
            if occurrence is not None and change.switch.immediate and change.received_at is not None:
                # An immediate change is due from the moment it arrived, not "now" again at every step:
                # the company's confirmation (S804 gate) names this occurrence and must still match it
                # when the answer comes back a moment later.
                occurrence = min(change.received_at, now)
            if occurrence is not None:
                out.append(DueChange(change, occurrence))
        out.sort(key=lambda d: (d.occurrence, d.change.id))
        return out

    def apply(self, due: DueChange, now: datetime) -> str:
        """S804: update the contract data from the change; returns what happened, for the log."""
        ch = due.change
        with self.store.transaction():
            outcome = self._apply(ch, due.occurrence, now)
            if outcome.startswith("void:"):
                state = "void"  # cannot apply as the contracts stand: kept with its reason, never retried
            else:
                state = "pending" if ch.switch.weekly else "done"  # a weekly rule recurs
            self.store.mark_applied(ch.id, due.occurrence, state, outcome)
        log.info("change #%s (%s %s %s, due %s): %s", ch.id, ch.kind.value, ch.action.value, ch.company.code,
                 iso(due.occurrence), outcome)
        return outcome

    def _apply(self, ch: ContractChange, occurrence: datetime, now: datetime) -> str:
        timing = {"scheduled_at": iso(occurrence), "effective_at": iso(now), "change_id": ch.id}
        current = {c.company.code: c for c in self.store.contracts()}
        supply = next((c for c in current.values() if c.role is Role.SUPPLY), None)
        target = supply if ch.kind is Role.SUPPLY else current.get(ch.company.code)
        if ch.action is Action.CONTRACT:
            new = Contract(
                role=ch.kind,
                company=ch.company,
                data_types=ch.data_types,
                send_interval=ch.send_interval or (target.send_interval if target else self._default_send()),
                menu=ch.menu,
                since=now,
                change_id=ch.id,
                measure_interval=ch.measure_interval,
            )
            if ch.kind is Role.SUPPLY and supply and supply.company.code != ch.company.code:
                self.sender.close_aggregate(supply)
                self.store.remove_contract(supply.company.code)
                self._event(supply, "contract_ended", now, **timing, successor=ch.company.code)
            if target and target.company.code == ch.company.code and not _differs(target, new):
                return "already in force (nothing to do)"
            if target and target.company.code == ch.company.code:
                self.sender.close_aggregate(target)  # what was measured under the old terms goes under them
            self.store.put_contract(new)
            self._event(new, "contract_started", now, **timing, **_terms(new))
            return f"{ch.company.code} in force"
        if target is None or target.company.code != ch.company.code:
            holder = target.company.code if target else "nobody"
            return f"void: {ch.company.code} has no {ch.kind.value} contract in force (holder: {holder})"
        self.sender.close_aggregate(target)
        if ch.action is Action.ABOLISH:
            self.store.remove_contract(target.company.code)
            self._event(target, "contract_ended", now, **timing, reason="abolished")
            return f"{ch.company.code} abolished"
        updated = replace(target, menu=ch.menu, change_id=ch.id)
        self.store.put_contract(updated)
        self._event(updated, "menu_changed", now, **timing, previous_menu=target.menu, menu=ch.menu)
        return f"{ch.company.code} menu {target.menu} -> {ch.menu}"

    def _event(self, contract: Contract, event: str, now: datetime, **details: Any) -> None:
        self.sender.queue_event(contract.company.code, event, now, **details)

    def _default_send(self) -> timedelta:
        return timedelta(seconds=float(self.store.get_meta("measurement_interval_s", 1800)))


def _terms(c: Contract) -> dict[str, Any]:
    terms = {"role": c.role.value, "data_types": [t.value for t in c.data_types], "menu": c.menu,
             "send_interval_s": c.send_interval.total_seconds()}
    if c.measure_interval is not None:
        terms["measure_interval_s"] = c.measure_interval.total_seconds()
    return terms


def _differs(a: Contract, b: Contract) -> bool:
    return ((a.data_types, a.menu, a.send_interval, a.company, a.measure_interval)
            != (b.data_types, b.menu, b.send_interval, b.company, b.measure_interval))
