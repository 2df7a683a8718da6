"""Delivery guarantees: restarts, several notifiers, SMTP failures, quiet hours, unsubscribe."""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta

from polling import wait_for as wait_until

from appliance.clock import JST
from cloud.outage.collector import Collector
from cloud.outage.manager import OutageManager
from cloud.outage.model import Event, MeterState, OutageStatus
from cloud.outage.notifier import Notifier
from cloud.outage.storage import open_storage


def declare_area_outage(p, area_index=0):
    p.window()
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(area_index)
    p.fleet.power_fail(meters)
    p.step(1)
    return meters


def test_restarting_every_handler_mid_outage_loses_and_repeats_nothing(pipeline, storage_url):
    p = pipeline()
    meters = declare_area_outage(p)
    p.clock.advance(30)
    p.sync()
    p.manager.tick()  # declared: ten e-mails queued
    # a notifier takes a batch and dies before sending any of it
    crashed = Notifier(open_storage(storage_url), p.clock, p.notifier_config, worker="crashed")
    crashed.config.batch = 4
    taken = crashed.storage.claim_notifications("crashed", p.clock.now(), crashed.config.lease.total_seconds(), 4, False)
    assert len(taken) == 4
    # the collector crashes with the restoration's messages received but not committed
    p.collector.stop()
    slow = Collector(p.storage, p.clock, p.timing, flush_interval_s=3600, batch_size=10**6)
    slow.start(p.broker.account("operator", "collector-1"), persistent=True)
    p.clock.advance(timedelta(minutes=10))
    p.fleet.power_restore(meters)
    restored = lambda statuses: {e.meter_id for e in statuses if e.state is MeterState.POWER_RESTORED}  # noqa: E731
    wait_until(lambda: len(restored(slow.pending()[1])) == len(meters), what="restoration statuses")
    slow.stop(flush=False)
    # everything restarts: a new collector (same session), a new manager, a new notifier
    p.collector = Collector(open_storage(storage_url), p.clock, p.timing, flush_interval_s=0.05)
    p.collector.start(p.broker.account("operator", "collector-1"), persistent=True)
    wait_until(lambda: all(p.storage.meter_comm(f"SM{n:07d}").status is MeterState.POWER_RESTORED for n in meters),
               what="redelivered statuses")
    p.manager = OutageManager(open_storage(storage_url), p.clock, p.manager.config)
    p.notifier = Notifier(open_storage(storage_url), p.clock, p.notifier_config, worker="restarted")
    p.publisher.sent = p.collector.stats.messages  # the new collector's count starts afresh (plus retained replays)
    p.step(1)  # the crashed notifier's lease ended during those ten minutes: its rows are taken again
    per_customer = Counter((m["To"], m["X-Outage-Event"].split()[0]) for m in p.smtp.messages)
    expected = {(p.emails(n), e) for n in meters for e in ("declared", "restored")}
    assert set(per_customer) == expected and set(per_customer.values()) == {1}
    assert p.storage.outages()[0].status is OutageStatus.RESTORED
    assert sorted(a for k, _, _, a in p.storage.notification_states() if k in {n.key for n in taken}) == [2, 2, 2, 2]


def test_several_notifier_processes_send_each_email_once(pipeline, storage_url):
    from cloud.outage.topology import FleetSpec

    p = pipeline(FleetSpec(meters=120, area_size=60, concentrators_per_area=3))
    declare_area_outage(p)
    p.clock.advance(30)
    p.sync()
    p.manager.tick()
    workers = [Notifier(open_storage(storage_url), p.clock, p.notifier_config, worker=f"n{i}") for i in range(3)]
    for w in workers:
        w.config.batch = 5
    threads = [threading.Thread(target=lambda w=w: [None for _ in iter(w.run_once, 0)]) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in range(60))
    assert sum(w.stats.sent for w in workers) == 60 and sum(1 for w in workers if w.stats.sent) >= 2


def test_smtp_failures_wait_in_the_retry_queue(pipeline):
    p = pipeline()
    declare_area_outage(p)
    p.smtp.fail_next = 3
    p.step(30)
    assert len(p.smtp.messages) == 7
    states = Counter(s for _, _, s, _ in p.storage.notification_states())
    assert states == {"sent": 7, "retry": 3}
    p.step(10)  # before the back-off ends
    assert len(p.smtp.messages) == 7
    p.step(30)
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in range(10))
    assert {a for _, _, s, a in p.storage.notification_states() if s == "sent"} == {1, 2}


def test_unsubscribed_and_unaffected_customers_get_nothing(pipeline):
    p = pipeline()
    p.storage.set_unsubscribed("SM0000002")
    declare_area_outage(p)
    p.step(30)
    assert sorted(p.smtp.recipients) == sorted(p.emails(n) for n in range(10) if n != 2)


def test_quiet_hours_hold_back_updates_but_not_declarations(pipeline):
    p = pipeline()
    p.clock.set(datetime(2026, 11, 23, 21, 30, tzinfo=JST))
    p.window()  # 22:00 window
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(1)
    p.fleet.power_fail(meters)
    p.step(1), p.step(30)
    assert len(p.smtp.messages) == 10  # urgent: sent at night
    outage = p.storage.outages()[0]
    p.manager.operator_update(outage.id, expected_restoration=p.clock.now() + timedelta(hours=3))
    p.manager.operator_update(outage.id, expected_restoration=p.clock.now() + timedelta(hours=5))
    p.step(1)
    assert len(p.smtp.messages) == 10  # held back until 07:00
    p.clock.set(datetime(2026, 11, 24, 7, 0, 1, tzinfo=JST))
    p.step(0)
    updates = [m for m in p.smtp.messages if m["X-Outage-Event"].startswith(Event.RESTORATION_CHANGED.value)]
    assert len(updates) == 10  # only the newest revision: the older one was superseded
    assert all(":2" in m["X-Outage-Event"] for m in updates)
