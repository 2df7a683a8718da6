"""S805/S806: build each company's payload (56D) from the reading and queue it for sending.

Entitlement is decided here, once, when the reading is stored: each contract in force at that
moment is owed this reading, and only its contracted data types. The outbox row is released at
the company's next send time (its own send interval), and the uplink pump delivers it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from . import aggregate, topics
from .clock import ceil_to, iso, parse_iso
from .datatypes import fields_of
from .domain import Contract, Reading
from .store import Store


def company_payload(reading: Reading, contract: Contract) -> dict[str, Any]:
    """56D: ``meter_id``, ``company_code``, ``seq``, the fields of the contracted data types and, when
    the contract has one, its tariff ``menu`` (56D carries the menu the data was measured under)."""
    payload: dict[str, Any] = {
        "meter_id": reading.meter_id,
        "company_code": contract.company.code,
        "seq": reading.seq,
    }
    for name in fields_of(contract.data_types):
        payload[name] = reading.field_value(name)
    if contract.menu:
        payload["menu"] = contract.menu
    return payload


class Sender:
    """Queues a reading for the grid operator and for every entitled company (S806)."""

    def __init__(self, store: Store, meter_id: str) -> None:
        self.store = store
        self.meter_id = meter_id

    def queue_reading(self, reading: Reading, contracts: list[Contract], now: datetime) -> None:
        """Call inside the transaction that stored the reading."""
        self.store.enqueue(topics.interval(self.meter_id), reading.as_json(), now, None)
        base = self._base_interval()
        for contract in contracts:
            if aggregate.aggregates(contract, base):
                self._aggregate(reading, contract)
                continue
            self.store.entitle(reading.seq, contract.company.code)
            self._queue_data(reading, contract)

    def _queue_data(self, reading: Reading, contract: Contract) -> None:
        self.store.enqueue(
            topics.company_data(contract.company.code, self.meter_id),
            company_payload(reading, contract),
            ceil_to(reading.interval_end, contract.send_interval),  # S805: the company's next send time
            contract.company.code,
        )

    def _aggregate(self, reading: Reading, contract: Contract) -> None:
        """Add a base reading to the contract's open window; queue the window when it is complete."""
        code, interval = contract.company.code, contract.measure_interval
        assert interval is not None
        window = aggregate.window_end(reading.interval_end, interval)
        state = self.store.get_meta(aggregate.META + code)
        if state and aggregate.window_end(parse_iso(state["last_end"]), interval) != window:
            self.close_aggregate(contract)  # the reading belongs to a later window (after downtime)
            state = None
        self.store.entitle(reading.seq, code)
        first = state["first_seq"] if state else reading.seq
        self.store.set_meta(aggregate.META + code, aggregate.open_state(reading.interval_end, first))
        if reading.interval_end == window:
            self.close_aggregate(contract)

    def close_aggregate(self, contract: Contract) -> None:
        """Queue the contract's open window, if any, as one payload (at a window's end, or when the
        contract ends or changes). Call inside a transaction."""
        key = aggregate.META + contract.company.code
        state = self.store.get_meta(key)
        if not state:
            return
        bodies = self.store.entitled_readings(contract.company.code, state["first_seq"])
        self.store.delete_meta(key)
        if bodies:
            self._queue_data(aggregate.combine(bodies), contract)

    def _base_interval(self) -> timedelta:
        return timedelta(seconds=float(self.store.get_meta("measurement_interval_s", 1800)))

    def queue_alert(self, alert_id: int, kind: str, now: datetime, company_code: str, **details: Any) -> None:
        """An alert for the household, to the grid operator, who e-mails the registered customer
        (embodiment 4: "transmitted to the customer's mobile phone"). ``alert_id`` is the meter's own
        alert row: a repeat counted on the same row is the same alert, e-mailed once."""
        payload = {"meter_id": self.meter_id, "alert_id": alert_id, "kind": kind, "at": iso(now),
                   "company_code": company_code, **details}
        self.store.enqueue(topics.alerts(self.meter_id), payload, now, None)

    def queue_event(self, company_code: str, event: str, now: datetime, **details: Any) -> None:
        """An event to one company (contract_scheduled, contract_ending, ...), sent at once, reliably."""
        payload = {
            "meter_id": self.meter_id,
            "company_code": company_code,
            "event_id": self.store.next_counter("event_id"),
            "event": event,
            "at": iso(now),
            **details,
        }
        self.store.enqueue(topics.company_events(company_code, self.meter_id), payload, now, company_code)
