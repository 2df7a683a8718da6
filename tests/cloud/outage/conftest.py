"""Fixtures of the outage pipeline: both storage backends, a real SMTP sink, a daytime clock."""
from __future__ import annotations

from datetime import datetime

import pytest
from operators import TEST_KEY
from polling import wait_for as wait_until
from smtp_sink import Mailbox, smtp_server  # noqa: F401 (Mailbox: for the tests that name it)

from appliance.clock import JST, ManualClock
from cloud.outage.storage import open_storage
from devkit.postgres import TempPostgres


@pytest.fixture(scope="session")
def postgres():
    """One real PostgreSQL cluster for the session; each test gets its own database."""
    with TempPostgres() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outage.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def storage(storage_url):
    s = open_storage(storage_url)
    yield s
    s.close()


@pytest.fixture
def day_clock():
    """Simulated time at 10:00 JST on a weekday: outside quiet hours."""
    return ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=JST))


@pytest.fixture
def smtp():
    with smtp_server() as box:
        yield box


@pytest.fixture
def publisher(broker):
    from cloud.mqtt import connect, disconnect, make_client

    settings = broker.account("simulator", "fleet-sim")  # writes as any meter, concentrator or the DA system
    client = make_client(settings)
    connect(client, settings)
    yield client
    disconnect(client)


class Pipeline:
    """The whole chain on real components, driven step by step in simulated time:
    fleet -> Mosquitto -> collector -> storage -> manager -> notifier -> SMTP (aiosmtpd)."""

    def __init__(self, broker, storage, clock, smtp, spec, **manager_options):
        from datetime import time, timedelta

        from cloud.outage.collector import Collector, Timing
        from cloud.outage.fleet import Fleet, Publisher
        from cloud.outage.mail import Sender
        from cloud.outage.manager import ManagerConfig, OutageManager
        from cloud.outage.notifier import Notifier, NotifierConfig
        from cloud.outage.topology import registrations

        self.broker, self.storage, self.clock, self.smtp, self.spec = broker, storage, clock, smtp, spec
        self.timing = Timing(timedelta(minutes=30), timedelta(minutes=2))
        storage.upsert_registrations(registrations(spec))
        self.collector = Collector(storage, clock, self.timing, flush_interval_s=0.05)
        self.collector.start(broker.account("operator", "collector-1"), persistent=True)
        self.manager = OutageManager(storage, clock, ManagerConfig(timing=self.timing, **manager_options))
        self.notifier_config = NotifierConfig(smtp_host=smtp.host, smtp_port=smtp.port, sender=Sender(TEST_KEY),
                                              quiet_start=time(22, 0), quiet_end=time(7, 0))
        self.notifier = Notifier(storage, clock, self.notifier_config, worker="notifier-1")
        self.publisher = Publisher(broker.account("simulator", "pipeline-sim"))
        self.fleet = Fleet(spec, clock, self.publisher, period=self.timing.period, silent_rate=0.0)

    def sync(self):
        """Wait until the collector has taken in everything the fleet published, and commit it."""
        wait_until(lambda: self.collector.stats.messages >= self.publisher.sent, what="collector to catch up")
        self.collector.flush()

    def step(self, seconds: float = 0):
        """Let simulated time pass, then run the manager and the notifier once."""
        self.clock.advance(seconds)
        self.sync()
        changed = self.manager.tick()
        while self.notifier.run_once():
            pass
        return changed

    def window(self):
        """Advance to the next window end, every meter reads, then past the grace period."""
        from appliance.clock import ceil_to

        end = ceil_to(self.clock.now(), self.timing.period)
        if end == self.clock.now():
            end += self.timing.period
        self.clock.set(end)
        self.fleet.read_window(end)
        return self.step(self.timing.grace.total_seconds() + 1)

    def emails(self, n: int) -> str:
        return f"c{n:07d}@{self.spec.email_domain}"

    def close(self):
        self.collector.stop()
        self.publisher.close()


@pytest.fixture
def pipeline(broker, storage, day_clock, smtp):
    from cloud.outage.topology import FleetSpec

    made = []

    def make(spec=None, **manager_options):
        p = Pipeline(broker, storage, day_clock, smtp, spec or FleetSpec(meters=40, area_size=10, concentrators_per_area=2),
                     **manager_options)
        made.append(p)
        return p

    yield make
    for p in made:
        p.close()
