"""Prometheus metrics of the outage handlers, each on its own endpoint, moving through an area outage."""
from __future__ import annotations

import pytest
from scrape import scrape
from test_delivery import declare_area_outage

from cloud.outage.metrics import CollectorMetrics, ManagerMetrics, NotifierMetrics, serve
from devkit.ports import free_port


@pytest.mark.parametrize("storage_url", ["sqlite"], indirect=True)
def test_the_handlers_counters_move_through_an_outage(pipeline, storage):
    p = pipeline()
    ports = {name: free_port() for name in ("collector", "manager", "notifier")}
    counts = ManagerMetrics()
    servers = [serve(f"127.0.0.1:{ports['collector']}", CollectorMetrics(p.collector)),
               serve(f"127.0.0.1:{ports['manager']}", counts),
               serve(f"127.0.0.1:{ports['notifier']}", NotifierMetrics(p.notifier))]
    try:
        assert scrape(ports["notifier"])[("smartmeter_notifier_emails_sent_total",)] == 0
        assert not any(k[0] == "smartmeter_manager_open_outages" for k in scrape(ports["manager"]))
        messages = scrape(ports["collector"])[("smartmeter_collector_messages_total",)]
        declare_area_outage(p)
        p.clock.advance(30)  # past the declaration delay: declared, e-mails sent
        p.step(1)
        counts.note_open(storage.outages(open_only=True))  # as `smartmeter cloud manager` does after each tick
        assert scrape(ports["collector"])[("smartmeter_collector_messages_total",)] > messages
        assert scrape(ports["collector"])[("smartmeter_collector_statuses_total",)] > 0  # the last gasps
        assert scrape(ports["manager"])[("smartmeter_manager_open_outages", "area")] == 1
        assert scrape(ports["notifier"])[("smartmeter_notifier_emails_sent_total",)] > 0
    finally:
        for s in servers:
            s.shutdown()
