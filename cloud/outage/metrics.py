"""Prometheus metrics of the outage handlers (prometheus_client): each handler process serves its own
at ``--metrics HOST:PORT`` (off unless given; no login, so the loopback or a management network).
Read at each scrape from the handler's own counters; the manager's open outages from its last tick."""
from __future__ import annotations

from collections import Counter
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


class CollectorMetrics(Collector):
    def __init__(self, collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        s = self.collector.stats
        for name, doc, value in (("messages", "MQTT messages taken in", s.messages),
                                 ("readings", "readings parsed (a batch counts each)", s.readings),
                                 ("stored", "new readings stored", s.stored),
                                 ("duplicates", "readings already stored", s.duplicates),
                                 ("statuses", "meters' status messages (power_fail, power_restored, ...)", s.statuses),
                                 ("dead_letters", "messages set aside in the dead-letter table", s.dead_letters)):
            yield _counter(f"smartmeter_collector_{name}", doc, value)
        refused = CounterMetricFamily("smartmeter_collector_refused", "messages refused, by reason", labels=["reason"])
        for reason, n in sorted(s.malformed.items()):
            refused.add_metric([str(reason)], n)
        yield refused


class NotifierMetrics(Collector):
    def __init__(self, notifier) -> None:
        self.notifier = notifier

    def collect(self) -> Iterator[Metric]:
        s = self.notifier.stats
        for name, doc, value in (("sent", "e-mails sent", s.sent), ("retried", "e-mails to be tried again", s.retried),
                                 ("failed", "e-mails given up on", s.failed),
                                 ("skipped", "e-mails not sent (unsubscribed, no address, ...)", s.skipped)):
            yield _counter(f"smartmeter_notifier_emails_{name}", doc, value)


class ManagerMetrics(Collector):
    """Open outages by kind, as of the manager's last tick (:meth:`note_open`)."""

    def __init__(self) -> None:
        self.open: Counter = Counter()
        self.ticks = 0

    def note_open(self, outages) -> None:
        self.open = Counter(o.kind.value for o in outages)
        self.ticks += 1

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("smartmeter_manager_open_outages", "open outages by kind, at the last tick", labels=["kind"])
        for kind, n in sorted(self.open.items()):
            g.add_metric([kind], n)
        yield g
        yield _counter("smartmeter_manager_ticks", "outage judgements run", self.ticks)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def serve(listen: str | None, collector: Collector):
    """Serve ``collector`` if ``listen`` (HOST:PORT) is given; returns the server or None."""
    if not listen:
        return None
    from appliance.metrics import serve as serve_one

    return serve_one(listen, collector)
