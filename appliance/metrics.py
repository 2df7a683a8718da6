"""Prometheus metrics of the meter service (prometheus_client), read at each scrape from the service's
counters and from the store through a connection of the scrape's own. Served only when configured
(``[metrics] listen`` or ``smartmeter appliance run --metrics HOST:PORT``); the endpoint has no login."""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .clock import Clock
from .service import MeterService
from .store import Store


class MeterMetrics(Collector):
    def __init__(self, service: MeterService, clock: Clock) -> None:
        self.service = service
        self.clock = clock
        self._store: Store | None = None
        self._lock = threading.Lock()  # scrapes may overlap (one thread per request)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            if self._store is None:
                self._store = Store(self.service.store.path)
            yield from self._collect(self._store)

    def _collect(self, store: Store) -> Iterator[Metric]:
        s = self.service
        meter = s.settings.meter_id
        yield _counter("smartmeter_meter_readings", "readings taken (the meter's sequence number)", meter,
                       store.get_meta("seq", 0))
        yield _gauge("smartmeter_meter_outbox_messages", "messages waiting in the outbox for the broker", meter,
                     store.outbox_size())
        yield _counter("smartmeter_meter_commands_dropped", "commands dropped on arrival (too large or too many)",
                       meter, s.commands_dropped)
        alerts = GaugeMetricFamily("smartmeter_meter_alerts", "alerts kept for the household, by kind (security_error: "
                                   "a company's confirmation failed; card_rejected, breaker_fault, ...)",
                                   labels=["meter", "kind"])
        for kind, count in store.alert_counts().items():
            alerts.add_metric([meter, kind], count)
        yield alerts
        last = store.last_reading()
        if last is not None:
            age = (self.clock.now() - datetime.fromisoformat(last["interval_end"])).total_seconds()
            yield _gauge("smartmeter_meter_last_reading_age_seconds", "seconds since the end of the newest reading",
                         meter, age)
        link = s.uplink.state()
        yield _gauge("smartmeter_meter_broker_connected", "1 while connected to the broker", meter, int(link.connected))
        if s.supply is not None:
            yield _counter("smartmeter_meter_supply_changes", "supply losses and returns published (last gasp)",
                           meter, s.supply.changes)
            if s.supply.supply_on is not None:
                yield _gauge("smartmeter_meter_supply_on", "1 while the supply is good", meter, int(s.supply.supply_on))


def _counter(name: str, doc: str, meter: str, value: float) -> CounterMetricFamily:
    m = CounterMetricFamily(name, doc, labels=["meter"])
    m.add_metric([meter], value)
    return m


def _gauge(name: str, doc: str, meter: str, value: float) -> GaugeMetricFamily:
    m = GaugeMetricFamily(name, doc, labels=["meter"])
    m.add_metric([meter], value)
    return m


def serve(listen: str, collector: Collector):
    """Serve ``collector`` (alone, on a registry of its own) at ``http://HOST:PORT/metrics``; returns the
    server (``shutdown()`` stops it)."""
    from prometheus_client import CollectorRegistry, start_http_server

    from .config import parse_listen

    host, port = parse_listen(listen)
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
