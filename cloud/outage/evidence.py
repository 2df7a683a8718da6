"""Judging one meter from the collector's evidence: is it down, since when, and how sure are we?

Evidence is ordered by the meter's own time stamps (a retained status replayed days later cannot
override a newer reading), and silence by the collector's windows:

* a last gasp (``power_fail``) or Last Will (``offline``) stamped at or after the end of the last
  reading (a gasp on the window boundary counts): down, *strong*;
* no reading for a window that started after the meter was last known alive: silent. One missed
  window is *weak* evidence (about 1% of a real fleet misses any given read), ``confirm_windows``
  in a row are strong. The manager lets weak evidence count only when it is corroborated.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from appliance.clock import ceil_to

from .model import MeterComm, MeterState


@dataclass(frozen=True)
class Judgement:
    meter_id: str
    since: datetime  # estimated power loss: the last gasp, or the start of the first missed window
    strong: bool
    gasp: bool  # the meter said so itself (power_fail / offline)
    missed_windows: int


def judge(comm: MeterComm, closed_end: datetime, period: timedelta, confirm_windows: int) -> Judgement | None:
    """``closed_end``: the end of the newest window whose grace period is over. None: the meter is up."""
    last_end = comm.last_interval_end
    if last_end is None:
        return None  # never heard from: not monitored yet
    status_at = comm.status_at
    if comm.status is not None and comm.status.is_down and status_at is not None and status_at >= last_end:
        return Judgement(comm.meter_id, status_at, True, True, 0)
    anchor = last_end  # the meter was alive at least until here
    if comm.status in (MeterState.ONLINE, MeterState.POWER_RESTORED) and status_at is not None and status_at > anchor:
        anchor = status_at
    first_start = ceil_to(anchor, period)  # readings are due for windows that start after the anchor
    first_end = first_start + period
    if first_end > closed_end:
        return None
    missed = (closed_end - first_end) // period + 1
    return Judgement(comm.meter_id, first_start, missed >= confirm_windows, False, missed)
