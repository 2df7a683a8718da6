"""The outage manager (outage information management device 25).

Each :meth:`OutageManager.tick` judges the meters' evidence (:mod:`.evidence`), joins it with the
registrations (Table 1), groups it per area (Table 3), applies the communication-fault and indoor
rules (Table 5), keeps every outage's lifecycle and writes the e-mails to send into the
notification outbox in the same transaction. Distribution automation and operators come in through
:meth:`report_da`, :meth:`operator_update` and :meth:`plan_outage`.

Lifecycle: suspected -> declared (after ``declaration_delay``, or at once on distribution
automation's word) -> restoring (some meters back, or DA reports restoration) -> restored (every
meter back). A suspected outage whose meters all come back first is cancelled: a blink, no e-mail.
A planned outage (工事停電) is announced ahead and absorbs the meters that go down in its area
during its window.

A manager given a :class:`~.regions.Region` judges only that region's prefectures: its meters, its
roster, its outages, and the distribution automation and operator input about its areas (:mod:`.regions`).
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from appliance.clock import Clock, floor_to

from .collector import Timing
from .evidence import Judgement, judge
from .model import (
    URGENT_EVENTS,
    Area,
    DaEvent,
    Event,
    Outage,
    OutageKind,
    OutageMember,
    OutageStatus,
)
from .regions import Region, lock_for_judging
from .roster import Placement, Roster
from .storage import Storage

log = logging.getLogger(__name__)

NOTIFIED_KINDS = (OutageKind.AREA, OutageKind.INDOOR)


@dataclass
class ManagerConfig:
    timing: Timing = field(default_factory=Timing)
    # Blinks shorter than this never become outages. Short enough that power loss to e-mail stays
    # well under a minute when the meters' last gasps announce it.
    declaration_delay: timedelta = timedelta(seconds=30)
    confirm_windows: int = 2  # missed windows in a row that confirm a silent meter on their own
    cluster_share: float = 0.5  # an area this much down corroborates its merely silent meters
    restoration_change: timedelta = timedelta(minutes=30)  # smaller changes of 復旧予定 send no e-mail
    planned_notice: timedelta = timedelta(days=3)  # how far ahead a planned outage is announced


@dataclass(frozen=True)
class AreaCount:
    """Table 3: outages per area."""

    area: Area
    current: int
    peak: int


@dataclass(frozen=True)
class MeterOutageInfo:
    """Tables 4 and 5: one meter's outage information, as the notifier and the API show it."""

    meter_id: str
    outage: Outage
    member: OutageMember

    @property
    def indoor(self) -> bool:
        return self.outage.kind is OutageKind.INDOOR


@dataclass
class _AreaView:
    """One area in one tick."""

    area: Area
    size: int
    down: dict[str, Judgement]
    open: list[Outage]
    da_active: DaEvent | None


@dataclass
class _Concentrator:
    """One concentrator of an area in one tick."""

    meters: int
    down: list[str]


@dataclass(frozen=True)
class _Evidence:
    """What judging an area depends on besides its down meters (whose changes the tick tracks itself);
    equal evidence and the same down meters, equal outcome."""

    da_active: DaEvent | None
    open: tuple[Outage, ...]  # copies: the tick changes its outages in place

    @classmethod
    def of(cls, da_active: DaEvent | None, outages: list[Outage]) -> _Evidence:
        still_open = sorted((replace(o) for o in outages if o.status.is_open), key=lambda o: o.id or 0)
        return cls(da_active, tuple(still_open))


class OutageManager:
    def __init__(self, storage: Storage, clock: Clock, config: ManagerConfig | None = None,
                 region: Region | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.config = config or ManagerConfig()
        self.region = region  # None: the whole territory
        self._lock = threading.Lock()  # the API thread and the tick loop share one manager
        self.roster = Roster(region)  # area sizes and concentrators, loaded at the first tick
        self._settled: dict[str, _Evidence] = {}  # area -> the evidence the last tick left it settled with
        self._judged: dict[str, tuple[tuple, Judgement | None]] = {}  # meter -> its row and judgement this window
        self._judged_window: datetime | None = None

    # ------------------------------------------------------------------ evidence
    def closed_window(self, now: datetime) -> datetime:
        t = self.config.timing
        return floor_to(now - t.grace, t.period)

    def _judge(self, now: datetime) -> tuple[dict[str, Judgement], set[str]]:
        """The down meters' judgements, and the meters whose judgement changed since the last call
        (judged anew, down anew, or back). Only the tick calls it: it keeps the last call's judgements."""
        closed = self.closed_window(now)
        previous = self._judged
        # in a new window every silent meter missed one more: all are judged again
        reuse = previous if closed == self._judged_window else {}
        out: dict[str, Judgement] = {}
        judged: dict[str, tuple[tuple, Judgement | None]] = {}
        for row in self.storage.down_candidate_rows(closed, self.roster.prefectures):
            meter = row[0]
            found = reuse.get(meter)
            if found is None or found[0] != row:  # judged only when its evidence changed in this window
                comm = self.storage.comm_of(row)
                found = (row, judge(comm, closed, self.config.timing.period, self.config.confirm_windows))
            judged[meter] = found
            if found[1] is not None:
                out[meter] = found[1]
        self._judged, self._judged_window = judged, closed  # only the candidates: meters back are forgotten
        before = {m: j for m, (_, j) in previous.items() if j is not None}
        return out, {m for m in out.keys() | before.keys() if out.get(m) is not before.get(m)}

    def _ours(self, area: Area) -> bool:
        return self.region is None or self.region.holds(area)

    def open_outages(self) -> list[Outage]:
        """The open outages this manager judges: its region's."""
        return [o for o in self.storage.outages(open_only=True) if self._ours(o.area)]

    def _active_da(self) -> dict[str, DaEvent]:
        """Areas whose newest distribution-automation word is an outage."""
        latest: dict[str, DaEvent] = {}
        for ev in self.storage.da_events():
            if self._ours(ev.area):
                latest[ev.area.key] = ev
        return {k: ev for k, ev in latest.items() if ev.kind == "outage"}

    # ------------------------------------------------------------------ the tick
    def tick(self) -> list[Outage]:
        """Judge, group, apply the rules, advance lifecycles; returns the outages it changed.

        An area whose evidence (its down meters' judgements, distribution automation's word, its open
        outages as the last tick left them) is what it was when the last tick left it settled is not
        judged again: judging it would change nothing. So a tick's work follows the changes, not the fleet."""
        with self._lock:
            try:
                return self._tick()
            except BaseException:
                self._settled = {}  # what the failed tick judged was rolled back: judge everything again
                raise

    def _tick(self) -> list[Outage]:
        with self.storage.transaction():
            lock_for_judging(self.storage, self.region)
            now = self.clock.now()
            if self.roster.refresh(self.storage):
                self._settled.clear()  # an area's size or concentrators may have changed
            judged, moved = self._judge(now)
            placed = self.roster.place(self.storage, judged.keys() | moved)
            dirty = {placed[m].area for m in moved if m in placed}  # areas whose down meters changed
            self.roster.forget(judged)
            by_area: dict[str, dict[str, Judgement]] = {}
            for meter, j in judged.items():
                p = placed.get(meter)
                if p is not None:  # an unregistered meter has no area; it stays in Table 2 only
                    by_area.setdefault(p.area, {})[meter] = j
            open_by_area: dict[str, list[Outage]] = {}
            for o in self.open_outages():
                open_by_area.setdefault(o.area.key, []).append(o)
            da = self._active_da()
            changed: list[Outage] = []
            settled: dict[str, _Evidence] = {}
            for key in sorted(set(by_area) | set(open_by_area)):
                outages = open_by_area.get(key, [])
                if key not in dirty and self._settled.get(key) == (evidence := _Evidence.of(da.get(key), outages)):
                    settled[key] = evidence
                    continue
                view = _AreaView(Area.from_key(key), self.roster.sizes.get(key, 0), by_area.get(key, {}), outages, da.get(key))
                done = self._tick_area(view, self._concentrators(key, view.down, placed), now)
                changed += done
                after = list({o.id: o for o in view.open + done}.values())
                if not any(o.status in (OutageStatus.SUSPECTED, OutageStatus.PLANNED) for o in after):
                    settled[key] = _Evidence.of(view.da_active, after)  # nothing waits on the clock: judging again is a no-op
        self._settled = settled  # only once committed
        return changed

    def _concentrators(self, area: str, down: dict[str, Judgement], placed: dict[str, Placement]) -> dict[str, _Concentrator]:
        """Each concentrator of the area: its meter count (the roster) and which of its meters are down."""
        out = {conc: _Concentrator(n, []) for conc, n in self.roster.concentrators.get(area, {}).items()}
        for meter in sorted(down):
            conc = out.get(placed[meter].concentrator)
            if conc is not None:
                conc.down.append(meter)
        return out

    def _tick_area(self, v: _AreaView, concentrators: dict[str, _Concentrator], now: datetime) -> list[Outage]:
        down = dict(v.down)
        changed: list[Outage] = []
        # 1. a whole concentrator silent while another in the area reports: its network, not the power
        faults = self._comm_faults(down, concentrators, v.da_active)
        for conc, meters in faults.items():
            for m in meters:
                down.pop(m)
            changed += self._track_comm_fault(v, conc, {m: v.down[m] for m in meters}, now)
        for o in [o for o in v.open if o.kind is OutageKind.COMM_FAULT and o.concentrator_id not in faults]:
            changed.append(self._advance(o, {}, now))
        # 2. merely silent meters count only when corroborated
        planned = next((o for o in v.open if o.kind is OutageKind.PLANNED and o.started_at <= now), None)
        area_open = next((o for o in v.open if o.kind is OutageKind.AREA), None)
        corroborated = (
            v.da_active is not None or planned is not None or area_open is not None
            or (len(down) >= 2 and v.size and len(down) / v.size >= self.config.cluster_share)
        )
        if not corroborated:
            down = {m: j for m, j in down.items() if j.strong}
        # 3. place each down meter in an outage
        indoor_open = {self._only_member(o): o for o in v.open if o.kind is OutageKind.INDOOR}
        if planned is not None:
            changed.append(self._advance(planned, down, now))
            down = {}  # the planned work explains every home down in its area
        for meter, o in list(indoor_open.items()):
            if o.status is OutageStatus.SUSPECTED and len(down) > 1 and meter in down:
                # a second home went down before this one was declared: an area outage after all
                o.status = OutageStatus.CANCELLED
                self._save(o, now)
                del indoor_open[meter]
                changed.append(o)
        free = {m: j for m, j in down.items() if m not in indoor_open}
        if area_open is None and free:
            if len(down) == 1 and v.size >= 2:
                (meter, j), = free.items()
                indoor_open[meter] = self._new(v.area, OutageKind.INDOOR, j.since, now, response="indoor", reason="home_breaker")
            else:
                area_open = self._new(v.area, OutageKind.AREA, min(j.since for j in free.values()), now)
                if v.da_active is not None:
                    self._declare(area_open, now, source="distribution_automation")
        for meter, o in indoor_open.items():
            changed.append(self._advance(o, {meter: down[meter]} if meter in down else {}, now))
        if area_open is not None:
            changed.append(self._advance(area_open, free, now))
        # whatever is still open and had no down meters this tick: its meters are back
        seen = {o.id for o in changed}
        for o in v.open:
            if o.id not in seen and o.status.is_open and o.kind is not OutageKind.COMM_FAULT:
                changed.append(self._advance(o, {}, now))
        return changed

    @staticmethod
    def _comm_faults(down: dict[str, Judgement], concentrators: dict[str, _Concentrator], da: DaEvent | None) -> dict[str, list[str]]:
        if da is not None or len(concentrators) < 2:
            return {}  # no healthy neighbour to compare with, or the grid itself says power is off
        silent = {
            conc: c.down for conc, c in sorted(concentrators.items())
            if c.meters >= 2 and len(c.down) == c.meters and not any(down[m].gasp for m in c.down)
        }
        reporting = [conc for conc, c in concentrators.items() if conc not in silent and len(c.down) < c.meters]
        return silent if reporting else {}

    def _only_member(self, o: Outage) -> str | None:
        members = self.storage.members(o.id)
        return members[0].meter_id if members else None

    # ------------------------------------------------------------------ lifecycle
    def _new(self, area: Area, kind: OutageKind, since: datetime, now: datetime, response: str = "investigating",
             reason: str = "investigating", concentrator: str | None = None) -> Outage:
        o = Outage(None, kind, OutageStatus.SUSPECTED, area, started_at=since, detected_at=now, response_status=response,
                   reason=reason, concentrator_id=concentrator, updated_at=now)
        log.info("suspected %s outage in %s", kind.value, area.key)
        return self.storage.save_outage(o)

    def _save(self, o: Outage, now: datetime) -> None:
        o.updated_at = now
        self.storage.save_outage(o)

    def _declare(self, o: Outage, now: datetime, source: str | None = None) -> None:
        o.status = OutageStatus.DECLARED
        o.declared_at = now
        if source:
            o.source = source
        log.info("declared %s outage %s in %s", o.kind.value, o.id, o.area.key)

    def _track_comm_fault(self, v: _AreaView, conc: str, down: dict[str, Judgement], now: datetime) -> list[Outage]:
        o = next((o for o in v.open if o.kind is OutageKind.COMM_FAULT and o.concentrator_id == conc), None)
        if o is None:
            o = self._new(v.area, OutageKind.COMM_FAULT, min(j.since for j in down.values()), now,
                          response="comm_fault", reason="comm_fault", concentrator=conc)
        return [self._advance(o, down, now)]

    def _advance(self, o: Outage, down: dict[str, Judgement], now: datetime) -> Outage:
        """Update one outage's members from this tick's down meters, then its status and e-mails."""
        current = {m.meter_id: m for m in self.storage.members(o.id, current_only=True)}
        joined = {m: j.since for m, j in down.items() if m not in current}
        left = {m: now for m in current if m not in down}
        if joined:
            self.storage.add_members(o.id, joined)
        if left:
            self.storage.restore_members(o.id, left)
        count = len(current) + len(joined) - len(left)
        o.current_count, o.peak_count = count, max(o.peak_count, count)
        before = o.status
        if o.status is OutageStatus.SUSPECTED:
            if count == 0:
                o.status = OutageStatus.CANCELLED  # a blink
                o.restored_at = now
            elif now - o.detected_at >= self.config.declaration_delay:
                self._declare(o, now)
        elif o.status in (OutageStatus.DECLARED, OutageStatus.RESTORING):
            if count == 0 and not self._da_holds_open(o):
                o.status, o.restored_at = OutageStatus.RESTORED, now
                o.response_status = "restored" if o.kind is not OutageKind.INDOOR else o.response_status
            elif left or o.status is OutageStatus.RESTORING:
                o.status = OutageStatus.RESTORING
        elif o.status is OutageStatus.PLANNED:
            if o.planned_end is not None and now >= o.planned_end and count == 0:
                o.status, o.restored_at = OutageStatus.RESTORED, now
        if joined or left or o.status is not before:
            self._save(o, now)
        if o.kind in NOTIFIED_KINDS and o.status in (OutageStatus.DECLARED, OutageStatus.RESTORING, OutageStatus.RESTORED):
            # on declaration everyone still out hears of it; afterwards only those who joined since
            newly = None if before is OutageStatus.SUSPECTED else list(joined)
            self._notify_members(o, now, restored=left, only=newly)
        return o

    def _da_holds_open(self, o: Outage) -> bool:
        """A DA-declared outage with no meters yet stays open until DA itself reports restoration."""
        return o.source == "distribution_automation" and o.peak_count == 0 and o.status is OutageStatus.DECLARED

    # ------------------------------------------------------------------ e-mails (the outbox)
    def _notify_members(self, o: Outage, now: datetime, restored: dict[str, datetime], only: list[str] | None = None) -> None:
        """Declaration e-mails for the current members (or just ``only``), restoration e-mails for ``restored``."""
        current = only if only is not None else [m.meter_id for m in self.storage.members(o.id, current_only=True)]
        self._enqueue(o, Event.DECLARED, current, now)
        if restored:
            self.storage.supersede(o.id, list(restored), [Event.RESTORATION_CHANGED])
            self._enqueue(o, Event.RESTORED, list(restored), now)

    def _enqueue(self, o: Outage, event: Event, meters: list[str], now: datetime, not_before: datetime | None = None,
                 key_suffix: str = "") -> int:
        if not meters:
            return 0
        regs = self.storage.registrations(meters)
        items = [
            (f"{o.id}:{m}:{event.value}{key_suffix}", event, m, o.id, event in URGENT_EVENTS, not_before or now, {})
            for m in meters
            if m in regs and regs[m].reachable  # never an e-mail nobody asked for
        ]
        return self.storage.add_notifications(items, now)

    # ------------------------------------------------------------------ inputs: DA, operators, plans
    def report_da(self, event: DaEvent) -> Outage | None:
        """Distribution automation (配電自動化システム 21): an outage start or a restoration in an area."""
        if event.kind not in ("outage", "restored"):
            raise ValueError(f"DA event kind {event.kind!r} is not 'outage' or 'restored'")
        if self.region is not None:
            self.region.refuse_outside(event.area)  # another region's manager records and judges it
        with self._lock, self.storage.transaction():
            lock_for_judging(self.storage, self.region)
            now = self.clock.now()
            self.storage.add_da_event(event, now)
            area_open = [o for o in self.open_outages() if o.area == event.area and o.kind is OutageKind.AREA]
            o = area_open[0] if area_open else None
            if event.kind == "outage":
                if o is None:
                    o = self._new(event.area, OutageKind.AREA, event.at, now)
                if o.status is OutageStatus.SUSPECTED:
                    self._declare(o, now, source="distribution_automation")
                o.started_at = min(o.started_at, event.at)
            elif o is not None:
                if o.current_count == 0:
                    o.status, o.restored_at = OutageStatus.RESTORED, event.at
                elif o.status is OutageStatus.DECLARED:
                    o.status = OutageStatus.RESTORING  # closes when the meters confirm it
            if o is not None:
                self._save(o, now)
                if o.status is not OutageStatus.RESTORED:
                    self._notify_members(o, now, restored={})
            return o

    def operator_update(self, outage_id: int, response_status: str | None = None, reason: str | None = None,
                        expected_restoration: datetime | None = None, clear_expected: bool = False) -> Outage:
        """The operator's form (営業端末 23): 対応状況, 停電理由, 復旧予定. A meaningful change of the
        expected restoration of a declared outage sends an update to the customers still without power."""
        with self._lock, self.storage.transaction():
            lock_for_judging(self.storage, self.region)
            now = self.clock.now()
            o = self.storage.outage(outage_id)
            if o is None:
                raise KeyError(f"no outage {outage_id}")
            if self.region is not None:
                self.region.refuse_outside(o.area)
            if response_status:
                o.response_status = response_status
            if reason:
                o.reason = reason
            old = o.expected_restoration
            new = None if clear_expected else (expected_restoration or old)
            o.expected_restoration = new
            meaningful = (old is None) != (new is None) or (
                old is not None and new is not None and abs(new - old) >= self.config.restoration_change
            )
            notify = meaningful and o.kind in NOTIFIED_KINDS and o.status in (OutageStatus.DECLARED, OutageStatus.RESTORING)
            if notify:
                o.revision += 1
            self._save(o, now)
            if notify:
                current = [m.meter_id for m in self.storage.members(o.id, current_only=True)]
                suffix = f":{o.revision}"
                self.storage.supersede(o.id, current, [Event.RESTORATION_CHANGED], keep_key_prefix=f"{o.id}:%:restoration_changed{suffix}")
                self._enqueue(o, Event.RESTORATION_CHANGED, current, now, key_suffix=suffix)
            return o

    def plan_outage(self, area: Area, start: datetime, end: datetime, reason: str = "construction") -> Outage:
        """A planned outage (工事停電): announced to every reachable customer of the area ahead of time."""
        if end <= start:
            raise ValueError("a planned outage must end after it starts")
        if self.region is not None:
            self.region.refuse_outside(area)
        with self._lock, self.storage.transaction():
            now = self.clock.now()
            o = Outage(None, OutageKind.PLANNED, OutageStatus.PLANNED, area, started_at=start, detected_at=now,
                       expected_restoration=end, planned_end=end, response_status="planned", reason=reason,
                       source="operator", updated_at=now)
            self.storage.save_outage(o)
            meters = [r.meter_id for r in self.storage.registrations_in_area(area)]
            o.peak_count = len(meters)
            self.storage.save_outage(o)
            self._enqueue(o, Event.PLANNED_NOTICE, meters, now, not_before=max(now, start - self.config.planned_notice))
            return o

    def report_security_error(self, meter_id: str, detail: str, at: datetime, reference: str = "") -> bool:
        """A meter's security error (e.g. a forged contract card): the customer hears of it by e-mail."""
        from .notices import security_error

        return security_error(self.storage, meter_id, detail, at, reference, self.clock.now())

    # ------------------------------------------------------------------ read side
    def area_counts(self) -> list[AreaCount]:
        """Table 3 for the open outages (planned ones are not counted until they start)."""
        counts: dict[str, AreaCount] = {}
        for o in self.open_outages():
            if o.kind is OutageKind.COMM_FAULT or (o.kind is OutageKind.PLANNED and o.current_count == 0):
                continue
            prev = counts.get(o.area.key, AreaCount(o.area, 0, 0))
            counts[o.area.key] = replace(prev, current=prev.current + o.current_count, peak=prev.peak + o.peak_count)
        return sorted(counts.values(), key=lambda c: c.area.key)

    def meter_info(self, meter_id: str) -> MeterOutageInfo | None:
        """Table 4/5 for one meter: its newest outage."""
        found = self.storage.outages_of_meter(meter_id)
        if not found:
            return None
        o, member = found[0]
        return MeterOutageInfo(meter_id, o, member)
