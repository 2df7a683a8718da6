"""S801/S802: take in contract change data and store it as a pending change.

Every way a change arrives (the local CLI, a contract card, a remote ``contract_change``
command, the touch screen) ends here, so each is validated the same way. A change that fails
validation is not stored, and nothing already stored is touched.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from .clock import iso
from .config import CODE_RE
from .domain import Action, ContractChange, Role
from .errors import ChangeRejected
from .schedule import describe, next_occurrence, switch_to_wire
from .sending import Sender
from .store import Store
from .trust import fields
from .trust.document import MAX_MEASURE_INTERVAL, MAX_MENU, MAX_SEND_INTERVAL

log = logging.getLogger(__name__)


def validate(change: ContractChange, now: datetime, measurement_interval: timedelta) -> None:
    """Raise :class:`ChangeRejected` naming the problem; return quietly if the change may be stored."""
    if not CODE_RE.match(change.company.code or ""):
        raise ChangeRejected(f"company.code: {change.company.code!r} must be 1-32 of A-Z a-z 0-9 _ -",
                             code="bad_company_code")
    _within_card_limits(change)
    if change.action is Action.CONTRACT and not change.data_types:
        raise ChangeRejected("data_types: a new contract must name at least one data type", code="no_data_types")
    if change.action is Action.MENU and not change.menu:
        raise ChangeRejected("menu: a tariff-menu change must name the new menu", code="no_menu")
    if change.switch.at is not None and change.switch.at <= now:
        raise ChangeRejected(
            f"switch: {iso(change.switch.at)} is in the past (now {iso(now)}); use 'immediate' or a future time",
            code="past_switch_time")
    if change.send_interval is not None and change.send_interval < measurement_interval:
        raise ChangeRejected("send_interval: shorter than the meter's measurement interval",
                             code="send_interval")
    measure = change.measure_interval
    if measure is not None and (measure < measurement_interval or measure % measurement_interval):
        raise ChangeRejected(f"measure_interval: {measure} is not a multiple of the meter's measurement interval "
                             f"({measurement_interval})", code="measure_interval")


def _within_card_limits(change: ContractChange) -> None:
    """The limits a contract card's fields have (appliance/trust), whichever way the change came:
    the CLI and the screen can type more than a card can carry."""
    company = {"code": change.company.code, "name": change.company.name, "server": change.company.server or None,
               "menu": change.menu}
    fields.required_text(company, "code", pattern=fields.COMPANY_CODE)
    fields.required_text(company, "name")
    fields.text(company, "server", optional=True)
    fields.text(company, "menu", optional=True, max_len=MAX_MENU)
    if change.send_interval is not None and change.send_interval > timedelta(seconds=MAX_SEND_INTERVAL):
        raise ChangeRejected(f"send_interval: longer than {timedelta(seconds=MAX_SEND_INTERVAL)}", code="send_interval")
    if change.measure_interval is not None and change.measure_interval > timedelta(seconds=MAX_MEASURE_INTERVAL):
        raise ChangeRejected(f"measure_interval: longer than {timedelta(seconds=MAX_MEASURE_INTERVAL)}",
                             code="measure_interval")
    if change.serial is not None:
        fields.integer({"serial": change.serial}, "serial", low=0)


def accept_change(store: Store, sender: Sender, change: ContractChange, now: datetime,
                  measurement_interval: timedelta) -> int:
    """S802: validate, store as pending, and tell the companies concerned. Returns the change id."""
    validate(change, now, measurement_interval)
    change = replace(change, received_at=now)
    when = now if change.switch.immediate else next_occurrence(change.switch, now)
    with store.transaction():
        change_id = store.add_change(change)
        if change.serial is not None:
            store.record_serial(change.company.code, change.serial)
        details = {"change_id": change_id, "switch": switch_to_wire(change.switch), "switch_at": iso(when),
                   "action": change.action.value, "kind": change.kind.value}
        if change.action is not Action.ABOLISH:
            sender.queue_event(change.company.code, "contract_scheduled", now, **details,
                               data_types=[t.value for t in change.data_types], menu=change.menu)
        ending = _ending_company(store, change)
        if ending:
            sender.queue_event(ending, "contract_ending", now, **details, successor=change.company.code
                               if change.action is Action.CONTRACT else None)
    log.info("stored change #%s from %s: %s %s %s at %s", change_id, change.source, change.kind.value,
             change.action.value, change.company.code, describe(change.switch))
    return change_id


def _ending_company(store: Store, change: ContractChange) -> str | None:
    """The company whose contract this change will end (as the contracts stand now), if any."""
    if change.action is Action.ABOLISH:
        return change.company.code
    if change.action is Action.CONTRACT and change.kind is Role.SUPPLY:
        supply = store.supply_contract()
        if supply and supply.company.code != change.company.code:
            return supply.company.code
    return None


def cancel_change(store: Store, change_id: int, reason: str = "cancelled by the household") -> bool:
    with store.transaction():
        return store.set_change_state(change_id, "cancelled", reason)
