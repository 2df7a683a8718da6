"""``smartmeter bench cloud``: the pipeline's figures, each as a ratio measured in the same run.

* live ingest: readings/s stored by the collector (every message validated against ``appliance.wire``)
  vs a bare paho subscriber that only counts, fed live by the same publisher: it shows that the
  collector keeps up, and what mutual TLS costs it; capacity is ``bench ingest``'s figure (a queued
  backlog drained), power loss to e-mail ``bench email``'s (the deployed processes);
* dead letters: a stream of refused messages (huge seq, times far ahead, not JSON, topic and body
  disagreeing), set aside per second by the collector vs the bare subscriber;
* detection: grace end -> complete no-communication list (Table 2) for N meters (default 1,000,000);
* e-mail rate: the notifier vs bare smtplib sends to the same SMTP server.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import secrets
import smtplib
import tempfile
import threading
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from appliance.clock import JST, SystemClock, iso
from cloud.mqtt import connect, disconnect, make_client, start_subscriber
from cloud.outage.collector import Collector
from cloud.outage.mail import Sender
from cloud.outage.model import Event, Reading
from cloud.outage.notifier import Notifier, NotifierConfig
from cloud.outage.storage import Storage, open_storage
from cloud.outage.topology import FleetSpec, concentrator_of, meter_id, registrations
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port
from devkit.postgres import TempPostgres

DRAIN_EVERY = 20_000
TEPCO_RATE = 28_400_000 / 1800  # readings/s: 28.4M meters, one read per 30 minutes
PERIOD = timedelta(minutes=30)


# ----------------------------------------------------------------- helpers
def _payloads(n: int, batch: int) -> list[tuple[str, bytes]]:
    end = datetime(2026, 11, 23, 10, 0, tzinfo=JST)
    start = end - PERIOD
    readings = [{"meter_id": meter_id(i), "seq": 1, "interval_start": iso(start), "interval_end": iso(end),
                 "power_w": 500.0, "energy_wh": 250.0} for i in range(n)]
    if batch <= 1:
        return [(f"meters/{r['meter_id']}/interval", json.dumps(r).encode()) for r in readings]
    spec = _batch_fleet(n, batch)  # each batch from the concentrator its meters are registered under
    return [(f"concentrators/{concentrator_of(spec, i)}/batch", json.dumps({"readings": readings[i:i + batch]}).encode())
            for i in range(0, n, batch)]


def _batch_fleet(n: int, batch: int) -> FleetSpec:
    """``n`` meters, ``batch`` to an area, all under one concentrator per area."""
    return FleetSpec(n, area_size=batch, concentrators_per_area=1)


def _bad_payloads(n: int) -> list[tuple[str, bytes]]:
    """The hostile messages seen, in turn: each becomes one dead letter."""
    end = datetime(2026, 11, 23, 10, 0, tzinfo=JST)
    kinds = (
        lambda m: {"meter_id": m, "seq": 2**63, "interval_start": iso(end - PERIOD), "interval_end": iso(end)},
        lambda m: {"meter_id": m, "seq": 1, "interval_start": "2099-01-01T00:00:00+00:00",
                   "interval_end": "2099-01-01T00:30:00+00:00"},
        lambda m: {"meter_id": "SOMEONE-ELSE", "seq": 1, "interval_start": iso(end - PERIOD), "interval_end": iso(end)},
    )
    out = []
    for i in range(n):
        m = meter_id(i)
        body = b"\xff not json" if i % 4 == 3 else json.dumps(kinds[i % 4](m)).encode()
        out.append((f"meters/{m}/interval", body))
    return out


def _publish(account, messages: list[tuple[str, bytes]]) -> None:
    """In a child process, so the publisher does not share the measured process's interpreter lock."""
    c = make_client(account)
    c.max_inflight_messages_set(1000)
    connect(c, account)
    info = None
    for i, (topic, payload) in enumerate(messages):
        info = c.publish(topic, payload, qos=1)
        if i % DRAIN_EVERY == DRAIN_EVERY - 1:
            info.wait_for_publish(600)  # paho's message ids wrap at 65535: never have that many in flight
    if info:
        info.wait_for_publish(600)
    disconnect(c)


def _run_publisher(broker: LocalMosquitto, messages) -> mp.Process:
    p = mp.get_context("fork").Process(target=_publish, args=(broker.account("simulator", "bench-fleet"), messages),
                                       daemon=True)
    p.start()
    return p


def _bare_rate(broker: LocalMosquitto, messages, readings: int) -> float:
    """Readings/s a subscriber that only counts messages sees."""
    count, first, last = [0], [0.0], [0.0]
    done = threading.Event()
    per_msg = readings / len(messages)

    def on_message(c, u, msg):
        if count[0] == 0:
            first[0] = time.perf_counter()
        count[0] += 1
        if count[0] == len(messages):
            last[0] = time.perf_counter()
            done.set()

    account = broker.account("operator", "bench-bare")  # the same kind of connection as the collector's
    c = make_client(account)
    c.on_message = on_message
    start_subscriber(c, account, [("meters/+/interval", 1), ("concentrators/+/batch", 1)])
    _run_publisher(broker, messages).join()
    done.wait(600)
    disconnect(c)
    return count[0] * per_msg / max(last[0] - first[0], 1e-9)


def _collector_rate(broker: LocalMosquitto, storage: Storage, messages, readings: int, dead: bool = False) -> float:
    """Readings/s stored, or with ``dead`` messages/s set aside as dead letters."""
    clock = SystemClock()
    col = Collector(storage, clock, batch_size=5000, flush_interval_s=0.1)
    first = [0.0]
    handle = col.handle

    def timed(topic, payload):
        if not first[0]:
            first[0] = time.perf_counter()
        handle(topic, payload)

    col.handle = timed
    col.start(broker.account("operator", "bench-collector"))
    count = (lambda: col.stats.dead_letters) if dead else storage.reading_count
    base = count()
    _run_publisher(broker, messages).join()
    deadline = time.monotonic() + 600
    while count() - base < readings and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.perf_counter() - first[0]
    col.stop()
    return readings / max(elapsed, 1e-9)


BENCH_KEY = secrets.token_bytes(32)  # this run's link-signing key


class _Sink:
    """Counts and time-stamps what the SMTP server accepts."""

    def __init__(self) -> None:
        self.accepted: list[tuple[float, str]] = []

    async def handle_DATA(self, server, session, envelope):
        self.accepted.append((time.time(), envelope.rcpt_tos[0]))
        return "250 OK"


# ----------------------------------------------------------------- figures
def bench_ingest(broker, storage, n: int) -> dict[int, float]:
    """Readings/s stored, per batch size; each against a bare subscriber on the same kind of connection."""
    link = "mutual TLS" if broker.tls else "plain TCP"
    print(f"ingest over {link}: {n:,} readings, QoS 1, every party on its own account, publisher in its own "
          "process, validation on")
    rates = {}
    storage.upsert_registrations(registrations(_batch_fleet(n, 200)))  # a concentrator speaks for its own meters
    for batch in (1, 200):
        msgs = _payloads(n, batch)
        bare = _bare_rate(broker, msgs, n)
        stored = rates[batch] = _collector_rate(broker, storage, msgs, n)
        kind = "one reading per message" if batch == 1 else f"concentrator batches of {batch}"
        print(f"  {kind}: bare subscriber {bare:,.0f}/s, collector stored {stored:,.0f}/s, "
              f"ratio {stored / bare:.2f} (goal 0.8), {stored / TEPCO_RATE:.2f}x TEPCO's 15.8k/s")
        storage_reset_readings(storage)
    return rates


def bench_tls_cost(plain: dict[int, float], workdir: Path, storage, n: int) -> None:
    """The same ingest through a broker with mutual TLS: what TLS costs (goal: at most 20%)."""
    with LocalMosquitto(workdir=workdir / "mosquitto-tls", tls=True) as broker:
        tls = bench_ingest(broker, storage, n)
    for batch, rate in tls.items():
        kind = "one reading per message" if batch == 1 else f"batches of {batch}"
        cost = 1 - rate / plain[batch]
        print(f"  TLS cost, {kind}: the collector stores at {rate / plain[batch]:.2f}x its plain TCP rate "
              f"(cost {max(cost, 0):.0%}; goal at most 20%)")


def bench_dead_letters(broker, storage, n: int) -> None:
    msgs = _bad_payloads(n)
    bare = _bare_rate(broker, msgs, n)
    refused = _collector_rate(broker, storage, msgs, n, dead=True)
    print(f"dead letters: {n:,} refused messages (seq 2^63, year 2099, topic/body disagree, not UTF-8): "
          f"bare subscriber {bare:,.0f}/s, collector set aside {refused:,.0f}/s, ratio {refused / bare:.2f}; "
          f"{storage.reading_count()} stored")


def storage_reset_readings(storage: Storage) -> None:
    with storage.transaction():
        storage._execute("DELETE FROM readings")
        storage._execute("DELETE FROM meter_comm")


def bench_detection(storage: Storage, n: int) -> None:
    end = datetime(2026, 11, 23, 10, 0, tzinfo=JST)
    print(f"detection: {n:,} meters, 1% silent in the window ending {iso(end)}")
    t0 = time.perf_counter()
    chunk = 50_000
    for i in range(0, n, chunk):
        batch = []
        for m in range(i, min(i + chunk, n)):
            w_end = end - PERIOD if m % 100 == 0 else end  # every hundredth meter missed the window
            batch.append(Reading(meter_id(m), int(w_end.timestamp()), w_end - PERIOD, w_end, {}))
        storage.store_readings(batch, end)
    print(f"  loading the fleet's evidence took {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    silent = storage.no_communication(end)
    took = time.perf_counter() - t0
    print(f"  grace end -> complete no-communication list: {took:.2f} s for {len(silent):,} silent meters (goal < 10 s)")
    storage_reset_readings(storage)


def bench_email_rate(storage: Storage, n: int) -> None:
    sink = _Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "teiden@example.jp", "c@example.jp", "停電情報のお知らせ"
    msg.set_content("お客様のお住まい地域が停電しています。\n" * 10)
    t0 = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", smtp.port) as s:
        for _ in range(n):
            s.send_message(msg)
    bare = n / (time.perf_counter() - t0)
    clock = SystemClock()
    now = clock.now()
    spec = FleetSpec(n, area_size=n)
    storage.upsert_registrations(registrations(spec))
    storage.add_notifications([(f"rate:{i}", Event.SECURITY_ERROR, meter_id(i), None, True, now, {"detail": "bench"})
                               for i in range(n)], now)
    notifier = Notifier(storage, clock, NotifierConfig(Sender(BENCH_KEY), smtp_host="127.0.0.1", smtp_port=smtp.port,
                                                       quiet_start=None, quiet_end=None, batch=200))
    t0 = time.perf_counter()
    while notifier.run_once():
        pass
    rate = notifier.stats.sent / (time.perf_counter() - t0)
    smtp.stop()
    print(f"e-mail rate: bare smtplib {bare:,.0f}/s, notifier {rate:,.0f}/s, ratio {rate / bare:.2f}")


def main(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="bench-cloud-"))
    pg = None
    url = args.db or f"sqlite:///{workdir / 'outage.db'}"
    if url == "postgresql":
        pg = TempPostgres().start()
        url = pg.create_database()
    print(f"storage: {url.split('://')[0]}")
    try:
        with LocalMosquitto(workdir=workdir / "mosquitto") as broker:
            storage = open_storage(url)
            plain = bench_ingest(broker, storage, args.ingest)
            bench_tls_cost(plain, workdir, storage, args.ingest)
            bench_dead_letters(broker, storage, max(args.ingest // 4, 1000))
            bench_detection(storage, args.meters)
        bench_email_rate(open_storage(f"sqlite:///{workdir / 'rate.db'}") if url.startswith("sqlite") else
                         open_storage(pg.create_database()), args.emails)
    finally:
        if pg:
            pg.stop()
    return 0
