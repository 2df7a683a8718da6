"""S807/S808: measure on the interval and keep the readings (time 56A4, power 56A5, energy 56A6).

Readings are windows aligned to JST midnight (30 min: :00-:30, :30-:00). Energy comes from the
chip's energy registers (the difference between two good samples), so it is exact and nothing is
lost across a missed window, a restart or a power cut: the next good reading simply spans the gap.
Power is the interval mean derived from that energy; voltage, current, power factor and frequency
are the values at the window's end.

A failed sample yields a ``bad`` reading with no values (the window still reports, so the grid
operator sees a live meter). A register that went backwards (chip reset or replaced) yields a
``register_reset`` reading without energy, and the next window measures from the new base.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from .clock import floor_to, iso, parse_iso
from .domain import Reading, Sample
from .store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Baseline:
    """The last good sample's registers and the window end they were taken for."""

    at: datetime
    import_wh_total: float
    export_wh_total: float | None

    def to_json(self) -> dict:
        return {"at": iso(self.at), "import": self.import_wh_total, "export": self.export_wh_total}

    @classmethod
    def from_json(cls, d: dict | None) -> "Baseline | None":
        return cls(parse_iso(d["at"]), d["import"], d["export"]) if d else None


class Measurer:
    """Decides when a window closes (S807) and turns a chip sample into a stored reading (S808)."""

    def __init__(self, store: Store, meter_id: str, interval: timedelta) -> None:
        self.store = store
        self.meter_id = meter_id
        self.interval = interval

    @property
    def last_end(self) -> datetime | None:
        value = self.store.get_meta("last_end")
        return parse_iso(value) if value else None

    def due(self, now: datetime) -> datetime | None:
        """S807: the window end to measure now, or None. Never a window at or before the last one
        (a clock stepped backwards does not measure a window twice)."""
        boundary = floor_to(now, self.interval)
        last = self.last_end
        if last is None or boundary > last:
            return boundary
        return None

    def record(self, sample: Sample, end: datetime) -> Reading | None:
        """S808: store the reading for the window ending at ``end``. Call inside a transaction.

        The first good sample of a new meter only sets the base: there is no window to report yet.
        Returns None when nothing is reported.
        """
        last_end = self.last_end
        base = Baseline.from_json(self.store.get_meta("baseline"))
        if last_end is not None and end <= last_end:
            return None
        if base is None:
            if sample.ok:
                self._set_base(sample, end)
            self.store.set_meta("last_end", iso(end))  # a failed first read waits for the next window
            return None
        start = last_end or base.at
        if not sample.ok:
            log.warning("window %s-%s: chip read failed (%s); reporting a bad reading", iso(start), iso(end), sample.error)
            reading = Reading(self.meter_id, self._next_seq(), start, end, quality="bad")
        else:
            reading = self._good_reading(sample, base, end)
            self._set_base(sample, end)
        self.store.add_reading(reading)
        self.store.set_meta("last_end", iso(end))
        return reading

    def _good_reading(self, s: Sample, base: Baseline, end: datetime) -> Reading:
        start = base.at  # energy is measured from the last good registers: the window spans any gap
        seconds = (end - start).total_seconds()
        imported = s.import_wh_total - base.import_wh_total
        exported = (s.export_wh_total - base.export_wh_total
                    if s.export_wh_total is not None and base.export_wh_total is not None else None)
        instant = dict(voltage_v=s.voltage_v, current_a=s.current_a, power_factor=s.power_factor,
                       frequency_hz=s.frequency_hz, import_wh_total=s.import_wh_total,
                       export_wh_total=s.export_wh_total)
        if imported < 0 or (exported is not None and exported < 0):
            log.error("energy register went backwards (%s -> %s Wh): chip reset or replaced; re-basing",
                      base.import_wh_total, s.import_wh_total)
            return Reading(self.meter_id, self._next_seq(), start, end, quality="register_reset", **instant)
        net = imported - (exported or 0.0)
        return Reading(
            self.meter_id, self._next_seq(), start, end,
            power_w=round(net * 3600.0 / seconds, 3) if seconds > 0 else None,
            energy_wh=round(imported, 3),
            export_wh=round(exported, 3) if exported is not None else None,
            **instant,
        )

    def _set_base(self, s: Sample, end: datetime) -> None:
        self.store.set_meta("baseline", Baseline(end, s.import_wh_total, s.export_wh_total).to_json())

    def _next_seq(self) -> int:
        return self.store.next_counter("seq")
