"""The touch screen's presenters: plain Python, no Kivy, testable on their own.

* :class:`Worker` runs every :class:`appliance.api.MeterAPI` call off the UI thread and posts the
  result back through a ``post`` function (the app passes one that uses ``Clock.schedule_once``).
* :class:`CardSlots` takes the card readers' events (:class:`drivers.cards.events.CardCallbacks`)
  and remembers which verified card document sits in which slot, and every company or tariff menu
  read (the Fig. 9(b) list, kept by the meter: stored through ``remember`` and ``restore``d at
  start). Select / set build the change from the remembered document.
* :class:`CompanyPicker` is the Fig. 9(b) Select / OK / Cancel state.
* :func:`flow_marks` is the Fig. 7 mark logic.
* :func:`half_hour_usage` puts a day's readings on the usage chart's 48 half-hour slots.

The rules about contracts stay in the core: a change is built with :func:`appliance.trust.to_change`
(the path cards and remote changes take) and stored by :meth:`MeterAPI.submit_change`, which may
refuse it with a reason.
"""
from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Callable, Iterable, Sequence

from appliance.api import ContractView
from appliance.clock import JST
from appliance.domain import ContractChange, SwitchTime
from appliance.interfaces import BreakerState
from appliance.store import StoredCard
from appliance.uplink import LinkProblem

log = logging.getLogger(__name__)

Post = Callable[[Callable[[], None]], None]


# --- Fig. 7 -------------------------------------------------------------------------------

OFF, ON, BLINK = "off", "on", "blink"


SUPPLY_CUT_V = 50.0  # below this the grid supplies nothing: a power cut, not a house using nothing


@dataclass(frozen=True)
class FlowMarks:
    state: str  # forward | no_load | reverse | breaker_open | supply_cut | unmeasured | unknown
    forward: str  # off | on | blink
    reverse: str

    @property
    def unmeasured(self) -> bool:
        """The 無計量 mark (JP6794864B2 Fig. 7, 5c): lit while the meter is not measuring."""
        return self.state == "unmeasured"


def link_problem_text(problem: LinkProblem) -> str | None:
    """The i18n key that tells a household why the link is down and what to do, if the kind is known."""
    return None if problem is LinkProblem.NONE else f"link_{problem.value}"


def breaker_is_open(breaker: BreakerState | None) -> bool:
    return breaker is not None and not breaker.closed


def flow_marks(last_reading: dict[str, Any] | None, breaker: BreakerState | None,
               no_load_w: float = 5.0) -> FlowMarks:
    """Fig. 7: forward blinks on forward flow, both light on no load, reverse blinks on reverse flow,
    both blink when the breaker (switch) is open. A reading the meter could not measure (the chip
    unreadable) lights the 無計量 mark instead; no voltage is a supply cut (停電), not no load.
    ``last_reading`` is the reading as stored (:attr:`appliance.api.MeterView.last_reading`)."""
    if breaker_is_open(breaker):
        return FlowMarks("breaker_open", BLINK, BLINK)
    if last_reading is None:
        return FlowMarks("unknown", OFF, OFF)
    if last_reading.get("quality", "good") == "bad":
        return FlowMarks("unmeasured", OFF, OFF)
    voltage = last_reading.get("voltage_v")
    if voltage is not None and voltage < SUPPLY_CUT_V:
        return FlowMarks("supply_cut", OFF, OFF)
    power = last_reading.get("power_w")
    if power is None:
        return FlowMarks("unmeasured", OFF, OFF)
    if power > no_load_w:
        return FlowMarks("forward", BLINK, OFF)
    if power < -no_load_w:
        return FlowMarks("reverse", OFF, BLINK)
    return FlowMarks("no_load", ON, ON)


# --- the top bar's backlog -------------------------------------------------------------------

BACKLOG_FLOOR = timedelta(minutes=1)  # late: due for longer than 2 send intervals, and at least this
BACKLOG_MAX = 1000  # queued messages beyond which a backlog is shown whatever their age


def backlog(view: Any) -> str | None:
    """The i18n key of the backlog line, when the queue is abnormal; None when it is the usual
    handful in flight (a household would read any count as data being lost). ``view``: a
    :class:`appliance.api.MeterView`."""
    if not view.queued:
        return None
    if view.link is not None and not view.link.connected:
        return "backlog_line"
    intervals = [c.send_interval for c in view.in_force]
    limit = max(2 * max(intervals, default=timedelta(0)), BACKLOG_FLOOR)
    late = view.oldest_due is not None and view.now - view.oldest_due > limit
    return "backlog_late" if late or view.queued > BACKLOG_MAX else None


# --- usage chart ---------------------------------------------------------------------------

SLOTS_PER_DAY = 48  # half-hour slots: the unit Japanese smart meters report and bills are read in


@dataclass(frozen=True)
class DayUsage:
    slots: list[float | None]  # kWh imported per half-hour slot; None: nothing stored (e.g. still to come)
    bad: list[int]  # slots holding a reading the meter could not measure
    total_kwh: float
    readings: int

    @property
    def last_slot(self) -> int | None:
        """The latest half hour holding a reading (None: none)."""
        return max((i for i, v in enumerate(self.slots) if v is not None), default=None)

    def total_until(self, slot: int) -> float:
        """kWh of the half hours up to and including ``slot``: a day still running compares with the
        day before by the same time, not with its whole day."""
        return sum(v for v in self.slots[:slot + 1] if v is not None)


def half_hour_usage(day: date, rows: Iterable[dict[str, Any]]) -> DayUsage:
    """Sums one JST day's readings (``MeterAPI.day_readings``) into half-hour slots by the time their
    window ends, so the chart reads as a clock whatever the measurement interval (5 s in the
    emulation, 30 min on a billing meter)."""
    slots: list[float | None] = [None] * SLOTS_PER_DAY
    bad: set[int] = set()
    midnight = datetime(day.year, day.month, day.day, tzinfo=JST)
    n = 0
    for r in rows:
        n += 1
        end = datetime.fromisoformat(r["interval_end"])
        # a window ending exactly on a slot boundary belongs to the slot before it
        i = min(SLOTS_PER_DAY - 1, max(0, int(((end - midnight).total_seconds() - 1e-6) // 1800)))
        if r.get("energy_wh") is None:
            bad.add(i)
            continue
        slots[i] = (slots[i] or 0.0) + r["energy_wh"] / 1000
    return DayUsage(slots, sorted(bad), sum(v for v in slots if v is not None), n)


AXIS_STEPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0)  # kWh per half hour: tops the axis can have


def axis_top(peaks: Iterable[float]) -> float:
    """The usage chart's y-axis top (kWh per half hour): the smallest step at or above the highest
    half hour of every day given, so each day is drawn on the same scale."""
    peak = max(peaks, default=0.0)
    return next((s for s in AXIS_STEPS if s >= peak), AXIS_STEPS[-1] * (int(peak // AXIS_STEPS[-1]) + 1))


def axis_ticks(top: float) -> list[float]:
    """Gridlines at a quarter, half, three quarters and the top."""
    return [round(top * k / 4, 4) for k in (1, 2, 3, 4)]


def slot_times(i: int) -> tuple[str, str]:
    """A half-hour slot's start and end as a clock shows them."""
    start = i * 30
    end = start + 30
    return f"{start // 60}:{start % 60:02d}", f"{end // 60}:{end % 60:02d}"


# --- the worker: no I/O on the UI thread ---------------------------------------------------

class Worker:
    """One background thread that runs API calls in order; results come back through ``post``."""

    def __init__(self, post: Post, name: str = "ui-worker") -> None:
        self.post = post
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, then: Callable[[Any], None] | None = None,
               fail: Callable[[Exception], None] | None = None) -> None:
        self._q.put((fn, args, then, fail))

    def stop(self) -> None:
        self._q.put(None)
        self._thread.join(2)

    def _run(self) -> None:
        while True:
            job = self._q.get()
            if job is None:
                return
            fn, args, then, fail = job
            try:
                result = fn(*args)
            except Exception as exc:  # shown to the household, never lost
                if fail is None:
                    log.exception("background call %s failed", getattr(fn, "__name__", fn))
                self._deliver(fail, exc)
            else:
                self._deliver(then, result)

    def _deliver(self, cb: Callable[[Any], None] | None, value: Any) -> None:
        if cb is not None:
            self.post(lambda: cb(value))


# --- card slots ----------------------------------------------------------------------------

def problem_of(exc: BaseException) -> dict[str, Any]:
    """A card problem in plain words (``reason_ja`` exists on every card error)."""
    return {"code": getattr(exc, "code", type(exc).__name__), "reason": getattr(exc, "reason", None) or str(exc),
            "reason_ja": getattr(exc, "reason_ja", None)}


@dataclass
class SlotState:
    slot: str
    present: bool = False
    reading: bool = False
    verified: Any = None  # appliance.trust.VerifiedDocument
    problem: dict[str, Any] | None = None
    switch: SwitchTime | None = None  # the switch time set on this slot: a date-time or a weekly rule
    change_id: int | None = None  # the pending change it stands for

    @property
    def switch_at(self) -> datetime | None:
        """The date-time set on this slot (Fig. 9(a) date-time display), if a one-off one."""
        return self.switch.at if self.switch is not None else None

    @property
    def company(self) -> dict[str, Any] | None:
        if self.verified is None:
            return None
        return entry_of(self.verified)


def entry_of(verified: Any) -> dict[str, Any]:
    doc = verified.document
    return {"code": doc.company.code, "name": doc.company.name, "kind": doc.kind.value,
            "action": doc.action.value, "menu": doc.menu, "data_types": [t.value for t in doc.data_types],
            "serial": doc.serial}


def entry_key(entry: dict[str, Any]) -> tuple[str, str | None]:
    return (entry["code"], entry.get("menu"))


def is_in_force(entry: dict[str, Any] | None, in_force: Sequence[ContractView]) -> bool:
    """Whether a card's company (and tariff menu, if the card names one) is the contract in force."""
    if not entry:
        return False
    return any(c.company.code == entry["code"] and c.role.value == entry["kind"] and
               (entry.get("menu") is None or entry["menu"] == c.menu) for c in in_force)


@dataclass
class CardProblemNote:
    slot: str
    at: datetime
    problem: dict[str, Any]


class CardSlots:
    """Slot state from card events, and the contract changes the slots' buttons ask for.

    ``verify(raw) -> VerifiedDocument`` is the core's check (raises a ``DocumentRejected``);
    ``changed()`` is called (from any thread) whenever something the display shows changed.
    ``remember(raw, slot)`` is called with every document that verified, for the meter to store
    (the app hands it to its worker: the store's connection is not the card reader's thread's).
    ``verify_stored(raw)`` checks the meter's own stored copy in :meth:`restore`: as ``verify`` but
    without the replay check (the serial may since have been used); ``verify`` if not given.
    """

    def __init__(self, slots: tuple[str, ...], verify: Callable[[bytes], Any], now: Callable[[], datetime],
                 changed: Callable[[], None] = lambda: None, remember: Callable[[bytes, str], None] | None = None,
                 verify_stored: Callable[[bytes], Any] | None = None) -> None:
        self.slots = {s: SlotState(s) for s in slots}
        self.verify = verify
        self.verify_stored = verify_stored
        self.now = now
        self.changed = changed
        self.remember = remember
        self.catalogue: dict[tuple[str, str | None], Any] = {}  # every company / menu read, by (code, menu)
        self.problems: list[CardProblemNote] = []
        self.lock = threading.RLock()

    # -- CardCallbacks -------------------------------------------------------------------------
    def callbacks(self):
        from appliance.card_events import CardCallbacks

        return CardCallbacks(on_document=self.on_document, on_error=self.on_error, on_removed=self.on_removed,
                             on_inserted=self.on_inserted)

    def on_inserted(self, slot: str) -> None:
        with self.lock:
            s = self._slot(slot)
            s.present, s.reading, s.problem, s.verified = True, True, None, None
        self.changed()

    def on_document(self, slot: str, raw: bytes) -> None:
        try:
            verified = self.verify(raw)
        except Exception as exc:  # a DocumentRejected: the card is refused, with its reason
            self.on_error(slot, exc)
            return
        with self.lock:
            s = self._slot(slot)
            s.present, s.reading, s.problem, s.verified = True, False, None, verified
            self.catalogue[entry_key(entry_of(verified))] = verified
        if self.remember is not None:
            self.remember(raw, slot)
        self.changed()

    def restore(self, stored: Iterable[StoredCard]) -> int:
        """Fill the Fig. 9(b) list from the meter's stored documents (``MeterAPI.stored_cards()``,
        oldest first). Each is verified again; one that no longer verifies (expired, ...) is left out."""
        check = self.verify_stored or self.verify
        restored: dict[tuple[str, str | None], Any] = {}
        for card in stored:
            try:
                verified = check(card.document)
            except Exception as exc:  # a DocumentRejected: not offered, but not silently
                log.warning("stored card %s %s (read %s) is not listed: %s", card.code, card.menu or "",
                            card.read_at, exc)
                continue
            restored[entry_key(entry_of(verified))] = verified
        with self.lock:
            for key, verified in restored.items():
                self.catalogue.setdefault(key, verified)  # a card read since start is the newer one
        self.changed()
        return len(restored)

    def on_error(self, slot: str, problem: BaseException) -> None:
        note = problem_of(problem)
        with self.lock:
            s = self._slot(slot)
            s.reading, s.verified, s.problem = False, None, note
            self.problems.append(CardProblemNote(slot, self.now(), note))
            del self.problems[:-20]
        self.changed()

    def on_removed(self, slot: str) -> None:
        with self.lock:
            s = self._slot(slot)
            s.present, s.reading, s.verified, s.problem = False, False, None, None
        self.changed()

    def _slot(self, slot: str) -> SlotState:
        if slot not in self.slots:
            self.slots[slot] = SlotState(slot)
        return self.slots[slot]

    # -- what the buttons ask for ---------------------------------------------------------------
    def immediate_change(self, slot: str) -> ContractChange | None:
        """Card select (Fig. 9(a)): the slot's card's contract, switched at once."""
        with self.lock:
            verified = self.slots[slot].verified
        return self._change(verified, f"card:{slot}", SwitchTime(immediate=True)) if verified else None

    def scheduled_change(self, slot: str, when: datetime | SwitchTime) -> ContractChange | None:
        """Date-time set (Fig. 9(a)): the slot's card's contract, switched at a date-time or by a
        weekly rule (the patent's weekly schedule, the same :class:`SwitchTime` the CLI makes)."""
        with self.lock:
            verified = self.slots[slot].verified
        switch = when if isinstance(when, SwitchTime) else SwitchTime(at=when)
        return self._change(verified, f"card:{slot}", switch) if verified else None

    def catalogue_change(self, key: tuple[str, str | None], source: str = "panel") -> ContractChange | None:
        """OK on the Fig. 9(b) list: the chosen company's (or menu's) contract, switched at once."""
        with self.lock:
            verified = self.catalogue.get(key)
        return self._change(verified, source, SwitchTime(immediate=True)) if verified else None

    @staticmethod
    def _change(verified: Any, source: str, switch: SwitchTime) -> ContractChange:
        from appliance.trust import to_change

        return replace(to_change(verified, source), switch=switch)

    def note_scheduled(self, slot: str, switch: SwitchTime | None, change_id: int | None) -> None:
        with self.lock:
            s = self.slots[slot]
            s.switch, s.change_id = switch, change_id
        self.changed()

    def entries(self) -> list[dict[str, Any]]:
        with self.lock:
            return [entry_of(v) for v in self.catalogue.values()]

    def snapshot(self) -> dict[str, SlotState]:
        with self.lock:
            return {k: replace(v) for k, v in self.slots.items()}


# --- Fig. 9(b): Select / OK / Cancel -----------------------------------------------------------

@dataclass
class CompanyPicker:
    """Select moves the highlight C1 -> C2 -> C3 -> C1 (a touch on an entry moves it there at once);
    Cancel returns it to the original (the one in force); OK returns the highlighted entry, which the
    caller submits."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    original: int | None = None
    highlight: int | None = None

    def update(self, entries: list[dict[str, Any]], in_force: Sequence[ContractView]) -> None:
        keys = [entry_key(e) for e in self.entries]
        moved = self.highlight is not None and self.highlight != self.original
        current_key = keys[self.highlight] if self.highlight is not None and self.highlight < len(keys) else None
        self.entries = sorted(entries, key=lambda e: (e["kind"] != "supply", e["code"], e.get("menu") or ""))
        new_keys = [entry_key(e) for e in self.entries]
        self.original = next((i for i, e in enumerate(self.entries) if is_in_force(e, in_force)), None)
        if moved and current_key in new_keys:
            self.highlight = new_keys.index(current_key)  # keep what the household is choosing
        else:
            self.highlight = self.original if self.original is not None else (0 if self.entries else None)

    def select(self) -> None:
        if self.entries:
            self.highlight = 0 if self.highlight is None else (self.highlight + 1) % len(self.entries)

    def point(self, index: int) -> None:
        """A touch on an entry highlights it, as Select would once it got there; OK still decides."""
        if 0 <= index < len(self.entries):
            self.highlight = index

    def cancel(self) -> None:
        self.highlight = self.original if self.original is not None else (0 if self.entries else None)

    def chosen(self) -> dict[str, Any] | None:
        if self.highlight is None or not self.entries:
            return None
        return self.entries[self.highlight]
