"""``smartmeter bench store``: readings/s through ``store_readings`` alone (no broker), into a territory
that already holds a day of data, at the topology's batch size (about 20 per concentrator) and at 200,
with a redelivered share counted as duplicates. PostgreSQL and SQLite, each on a fresh database."""
from __future__ import annotations

import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from appliance.clock import JST
from cloud.outage.model import Reading
from cloud.outage.storage import open_storage
from devkit.postgres import TempPostgres

PERIOD = timedelta(minutes=30)
START = datetime(2026, 12, 1, 0, 0, tzinfo=JST)


def _window(meters: int, end: datetime) -> list[Reading]:
    seq = int(end.timestamp() // PERIOD.total_seconds())
    return [Reading(f"m{i:07d}", seq, end - PERIOD, end, {"kwh": 1.0}) for i in range(meters)]


def _rate(url: str, meters: int, batch: int, timed: int = 8) -> tuple[float, int, int]:
    """Readings/s over ``timed`` windows after a day of windows already stored; new and duplicates seen."""
    storage = open_storage(url)
    try:
        end = START
        for _ in range(48):  # a day already held: the indexes are not empty
            end += PERIOD
            readings = _window(meters, end)
            for i in range(0, len(readings), 200):
                storage.store_readings(readings[i:i + 200], end)
        sent_total = new = 0
        elapsed = 0.0
        for _ in range(timed):
            end += PERIOD
            readings = _window(meters, end)
            sent = readings + readings[: meters // 10]  # QoS 1 redelivery: a tenth again
            t0 = time.perf_counter()
            for i in range(0, len(sent), batch):
                new += storage.store_readings(sent[i:i + batch], end)
            elapsed += time.perf_counter() - t0
            sent_total += len(sent)
        return sent_total / elapsed, new, sent_total - new
    finally:
        storage.close()


def main(args) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-store-"))
    with TempPostgres() as pg:
        for name, make in (("postgresql", pg.create_database), ("sqlite", None)):
            for batch in (20, 200):
                url = make() if make else f"sqlite:///{work / f'store-{batch}.db'}"
                rate, new, dup = _rate(url, args.meters, batch)
                print(f"{name}: batches of {batch}: {rate:,.0f} readings/s ({new:,} new, {dup:,} duplicates)")
    return 0
