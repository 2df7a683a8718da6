"""A contract's own measurement interval (JP5159864B2, contract data 56A): the base readings
aggregated into the company's coarser windows.

The meter measures on its base interval for everyone (the grid operator's settlement readings are
never coarser). A contract whose ``measure_interval`` is a larger multiple of it receives one
payload per window of its own, aligned to JST midnight like every window:

* ``interval_start`` / ``interval_end``: the first reading's start and the last one's end;
* ``energy_wh`` / ``export_wh``: the sum of the readings' energy (exact: each good reading spans
  from the last good registers, so nothing falls between two readings);
* ``power_w``: the mean over the readings' time (``sum(power x duration) / sum(duration)``);
* ``voltage_v``, ``current_a``, ``power_factor``, ``frequency_hz`` and the register totals: the
  values at the aggregate's end, as a base reading carries them at its window's end;
* ``seq``: the last base reading's ``seq`` (unique and increasing per company, so a receiver's
  deduplication on ``(meter_id, seq)`` still holds).

Each base reading enters exactly one aggregate, in order: the open aggregate is a meta row naming its
first ``seq``, written in the same transaction as the reading, and the entitlement log says which
readings belong to the company. A window closes when a reading ends on its boundary, when the next
reading belongs to a later window (after downtime), or when the contract ends or changes.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .clock import ceil_to, iso, parse_iso
from .domain import Contract, Reading

META = "aggregate:"  # + company code: {"first_seq", "last_end"} of the open aggregate


def aggregates(contract: Contract, base: timedelta) -> bool:
    """Whether this contract's payloads are aggregates (a measurement interval above the base one)."""
    return contract.measure_interval is not None and contract.measure_interval > base


def window_end(end: datetime, measure_interval: timedelta) -> datetime:
    """The end of the contract's window a reading ending at ``end`` belongs to."""
    return ceil_to(end, measure_interval)


def combine(bodies: list[dict[str, Any]]) -> Reading:
    """One reading from the stored base readings (JSON bodies), oldest first."""
    first, last = bodies[0], bodies[-1]
    starts = [parse_iso(b["interval_start"]) for b in bodies]
    ends = [parse_iso(b["interval_end"]) for b in bodies]
    timed = [(b["power_w"], (e - s).total_seconds()) for b, s, e in zip(bodies, starts, ends)
             if b.get("power_w") is not None and e > s]
    seconds = sum(d for _p, d in timed)
    return Reading(
        meter_id=first["meter_id"], seq=last["seq"], interval_start=min(starts), interval_end=max(ends),
        quality="good" if all(b.get("quality") == "good" for b in bodies) else "partial",
        power_w=round(sum(p * d for p, d in timed) / seconds, 3) if seconds else None,
        energy_wh=_sum(bodies, "energy_wh"), export_wh=_sum(bodies, "export_wh"),
        voltage_v=last.get("voltage_v"), current_a=last.get("current_a"), power_factor=last.get("power_factor"),
        frequency_hz=last.get("frequency_hz"), import_wh_total=last.get("import_wh_total"),
        export_wh_total=last.get("export_wh_total"))


def _sum(bodies: list[dict[str, Any]], key: str) -> float | None:
    values = [b[key] for b in bodies if b.get(key) is not None]
    return round(sum(values), 3) if values else None


def open_state(last_end: datetime, first_seq: int) -> dict[str, Any]:
    return {"first_seq": first_seq, "last_end": iso(last_end)}
