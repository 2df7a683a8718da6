"""The fleet simulator: N meters (1 .. 1,000,000) in areas under concentrators, over real MQTT.

Each window every powered meter whose concentrator is reachable sends its interval reading, at a
random moment inside the send spread (jitter), directly or batched by its concentrator; about 1%
miss any given read, as real fleets do. Power failures send last gasps (``power_fail``, retained),
restorations ``power_restored``. Distribution automation's view of the grid can be published as a
simulated feed on ``grid/da/events``.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import paho.mqtt.client as paho

from appliance.clock import Clock, iso
from appliance.config import MqttSection

from .model import Area
from ..mqtt import connect, disconnect, make_client
from .topology import FleetSpec, area_of, concentrator_of, meter_id

DA_TOPIC = "grid/da/events"


class Publisher:
    """A few MQTT connections that publish on behalf of many meters: one per account given (on a
    broker with accounts, one account is one session, so a second connection needs its own)."""

    def __init__(self, *brokers: MqttSection, qos: int = 1) -> None:
        if not brokers:
            raise ValueError("a publisher needs at least one broker account")
        self.qos = qos
        self.clients: list[paho.Client] = []
        for broker in brokers:
            c = make_client(broker)
            c.max_inflight_messages_set(1000)  # keep the pipe full; the broker is local and fast
            c.max_queued_messages_set(0)
            connect(c, broker)
            self.clients.append(c)
        self._next = 0
        self._last: dict[int, paho.MQTTMessageInfo] = {}
        self.sent = 0

    def publish(self, topic: str, payload: dict, retain: bool = False) -> None:
        i = self._next = (self._next + 1) % len(self.clients)
        info = self._last[i] = self.clients[i].publish(topic, json.dumps(payload, ensure_ascii=False), qos=self.qos, retain=retain)
        self.sent += 1
        if self.qos and self.sent % (20_000 * len(self.clients)) == 0:
            info.wait_for_publish(600)  # paho's message ids wrap at 65535: never have that many in flight

    def wait(self, timeout: float = 600.0) -> None:
        """Until the broker has everything sent so far (QoS 1: acknowledged; in order per connection)."""
        for info in self._last.values():
            info.wait_for_publish(timeout)

    def close(self) -> None:
        self.wait()
        for c in self.clients:
            disconnect(c)


@dataclass
class WindowReport:
    window_end: datetime
    sent: int = 0
    random_silent: int = 0
    without_power: int = 0
    behind_failed_concentrator: int = 0
    messages: int = 0


@dataclass
class FleetTotals:
    windows: int = 0
    readings: int = 0
    messages: int = 0
    random_silent: int = 0
    gasps: int = 0
    restorations: int = 0
    events: list[str] = field(default_factory=list)


class Fleet:
    def __init__(self, spec: FleetSpec, clock: Clock, publisher: Publisher, period: timedelta = timedelta(minutes=30),
                 silent_rate: float = 0.01, batch: bool = False, batch_size: int = 200, seed: int = 1) -> None:
        self.spec = spec
        self.clock = clock
        self.pub = publisher
        self.period = period
        self.silent_rate = silent_rate
        self.batch = batch
        self.batch_size = batch_size
        self.rng = random.Random(seed)
        self.off: set[int] = set()  # meters without power
        self.failed_concentrators: set[str] = set()
        self.totals = FleetTotals()

    # ----- readings
    def reading(self, n: int, window_end: datetime) -> dict:
        start = window_end - self.period
        power = round(self.rng.uniform(80, 1800), 1)
        return {
            "meter_id": meter_id(n),
            # the window's index: strictly increasing per meter and never reused, even across restarts
            "seq": int(window_end.timestamp() // self.period.total_seconds()),
            "interval_start": iso(start),
            "interval_end": iso(window_end),
            "power_w": power,
            "energy_wh": round(power * self.period.total_seconds() / 3600, 1),
            "export_wh": 0.0,
            "voltage_v": round(self.rng.gauss(101, 1.2), 1),
            "current_a": round(power / 100, 2),
            "power_factor": 0.95,
            "frequency_hz": 60.0,
        }

    def read_window(self, window_end: datetime, spread_s: float = 0.0,
                    progress: Callable[[int], None] | None = None) -> WindowReport:
        """Every meter's read for the window ending at ``window_end``. With ``spread_s`` the sends are
        spread over that many seconds in random order (jitter); without, they go as fast as possible."""
        report = WindowReport(window_end)
        order = list(range(self.spec.meters))
        self.rng.shuffle(order)  # jitter: a random send moment inside the spread
        batches: dict[str, list[dict]] = defaultdict(list)
        step = spread_s / max(1, len(order))
        for i, n in enumerate(order):
            if n in self.off:
                report.without_power += 1
                continue
            conc = concentrator_of(self.spec, n)
            if conc in self.failed_concentrators:
                report.behind_failed_concentrator += 1
                continue
            if self.rng.random() < self.silent_rate:
                report.random_silent += 1
                continue
            r = self.reading(n, window_end)
            if self.batch:
                batches[conc].append(r)
                if len(batches[conc]) >= self.batch_size:
                    self._send_batch(conc, batches.pop(conc), report)
            else:
                self.pub.publish(f"meters/{r['meter_id']}/interval", r)
                report.messages += 1
            report.sent += 1
            if progress and i % 1000 == 999:
                progress(1000)
            if step and i % 100 == 99:
                self.clock.sleep(step * 100)
        for conc, readings in batches.items():
            self._send_batch(conc, readings, report)
        if progress:
            progress(len(order) % 1000)
        self.pub.wait()
        t = self.totals
        t.windows += 1
        t.readings += report.sent
        t.messages += report.messages
        t.random_silent += report.random_silent
        return report

    def _send_batch(self, conc: str, readings: list[dict], report: WindowReport) -> None:
        self.pub.publish(f"concentrators/{conc}/batch", {"concentrator_id": conc, "readings": readings})
        report.messages += 1

    # ----- events
    def power_fail(self, meters: Iterable[int], gasp_share: float = 1.0) -> None:
        """Supply lost: last gasps from ``gasp_share`` of the meters (some are always lost)."""
        now = self.clock.now()
        for n in meters:
            self.off.add(n)
            if self.rng.random() < gasp_share:
                self.pub.publish(f"meters/{meter_id(n)}/status", {"state": "power_fail", "at": iso(now)}, retain=True)
                self.totals.gasps += 1
        self.pub.wait()

    def power_restore(self, meters: Iterable[int]) -> None:
        now = self.clock.now()
        for n in meters:
            if n in self.off:
                self.off.discard(n)
                self.pub.publish(f"meters/{meter_id(n)}/status", {"state": "power_restored", "at": iso(now)}, retain=True)
                self.totals.restorations += 1
        self.pub.wait()

    def concentrator_fault(self, concentrator: str, failed: bool = True) -> None:
        (self.failed_concentrators.add if failed else self.failed_concentrators.discard)(concentrator)

    def da_event(self, area: Area, kind: str) -> None:
        """The simulated distribution-automation feed."""
        self.pub.publish(DA_TOPIC, {"area": area.key, "kind": kind, "at": iso(self.clock.now())})
        self.pub.wait()

    def note(self, text: str) -> None:
        self.totals.events.append(f"{iso(self.clock.now())} {text}")

    # ----- helpers for scenarios
    def meters_of_area(self, area_index: int) -> list[int]:
        start = area_index * self.spec.area_size
        return list(range(start, min(start + self.spec.area_size, self.spec.meters)))

    def meters_of_concentrator(self, concentrator: str) -> list[int]:
        area_index = int(concentrator[2:].split("-")[0])
        return [n for n in self.meters_of_area(area_index) if concentrator_of(self.spec, n) == concentrator]

    def area(self, area_index: int) -> Area:
        return area_of(area_index)
