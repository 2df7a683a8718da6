"""Prometheus metrics of the meter service, scraped over HTTP as Prometheus does, moving as it runs."""
from __future__ import annotations

from scrape import scrape

from appliance.metrics import MeterMetrics, serve
from devkit.ports import free_port
from meter_rig import METER, Rig, supply


def test_the_meter_services_metrics_move_as_it_measures_and_sends(tmp_path, broker, clock):
    rig = Rig(tmp_path, broker, clock, companies=("A",))
    port = free_port()
    server = serve(f"127.0.0.1:{port}", MeterMetrics(rig.service, clock))
    try:
        rig.commission(supply("A"))
        before = scrape(port)
        assert before[("smartmeter_meter_readings_total", METER)] == 0
        assert before[("smartmeter_meter_broker_connected", METER)] == 1
        rig.run(3)
        after = scrape(port)
        assert after[("smartmeter_meter_readings_total", METER)] == 3
        assert after[("smartmeter_meter_outbox_messages", METER)] > 0  # queued, the pump's acks not yet recorded
        assert 0 <= after[("smartmeter_meter_last_reading_age_seconds", METER)] < 30 * 60
        rig.drain()
        assert scrape(port)[("smartmeter_meter_outbox_messages", METER)] == 0
    finally:
        server.shutdown()
        rig.close()
