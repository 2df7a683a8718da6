"""S805/S806: build each company's payload (56D) from the reading and queue it for sending.

Entitlement is decided here, once, when the reading is stored: each contract in force at that
moment is owed this reading, and only its contracted data types. The outbox row is released at
the company's next send time (its own send interval), and the uplink pump delivers it.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from . import topics
from .clock import ceil_to, iso
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
        for contract in contracts:
            self.store.entitle(reading.seq, contract.company.code)
            self.store.enqueue(
                topics.company_data(contract.company.code, self.meter_id),
                company_payload(reading, contract),
                ceil_to(reading.interval_end, contract.send_interval),  # S805: the company's next send time
                contract.company.code,
            )

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
