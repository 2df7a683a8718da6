"""The MDMS and the meters' evidence: interval readings, and each meter's last word (the collector's)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from itertools import chain
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause

from appliance.clock import from_epoch, to_epoch

from ..model import MeterComm, MeterState, Reading, StatusEvent
from .database import chunks, statement
from .partitions import ReadingPartitions, day_of

COLUMNS = "meter_id, last_interval_end, reading_rx_at, status, status_at, status_rx_at"
DOWN_STATES = (MeterState.POWER_FAIL.value, MeterState.OFFLINE.value)

HEARD_VALUES = (
    "ON CONFLICT (meter_id) DO UPDATE SET reading_rx_at = excluded.reading_rx_at, "
    "last_interval_end = CASE WHEN meter_comm.last_interval_end IS NULL "
    "OR excluded.last_interval_end > meter_comm.last_interval_end "
    "THEN excluded.last_interval_end ELSE meter_comm.last_interval_end END"
)
# PostgreSQL: a whole batch and its meters' last word in one statement (atomic on its own, one round trip).
# The rows travel as one JSON array of arrays: encoded in C by json.dumps and read by the server as a set
# (json_array_elements), where the driver's array parameters are dumped element by element in Python.
# No conflict target: the partitioned table's key is (meter_id, seq, interval_end), which dedupes as
# (meter_id, seq) does (see .partitions). Both inserts run to completion whatever the final SELECT reads.
BULK_STORE = statement(
    "WITH new AS (INSERT INTO readings (meter_id, seq, interval_start, interval_end, payload, received_at) "
    "SELECT r->>0, CAST(r->>1 AS BIGINT), CAST(r->>2 AS DOUBLE PRECISION), CAST(r->>3 AS DOUBLE PRECISION), "
    "r->>4, :rx FROM json_array_elements(CAST(:rows AS JSON)) AS r ON CONFLICT DO NOTHING RETURNING 1), "
    "heard AS (INSERT INTO meter_comm (meter_id, last_interval_end, reading_rx_at) "
    "SELECT h->>0, CAST(h->>1 AS DOUBLE PRECISION), :rx FROM json_array_elements(CAST(:heard AS JSON)) AS h "
    + HEARD_VALUES + ") SELECT COUNT(*) FROM new"
)
ROWS_PER_STATEMENT = 100  # SQLite: the driver lets go of the interpreter lock once per statement, not per row


@lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def _rows_sql(kind: str, n: int) -> TextClause:
    """SQLite's insert of ``n`` readings (``kind`` "readings": new rows only, deduplicated on (meter_id, seq))
    or of ``n`` meters' last word ("heard") in one statement: the flush thread then waits for the MQTT
    thread's interpreter lock once per ``n`` rows (once per row, the flush fell behind the MQTT thread)."""
    if kind == "readings":
        names, head, tail = ("meter_id", "seq", "interval_start", "interval_end", "payload", "received_at"), (
            "INSERT INTO readings (meter_id, seq, interval_start, interval_end, payload, received_at) VALUES "), (
            " ON CONFLICT (meter_id, seq) DO NOTHING")
    else:
        names, head, tail = ("meter_id", "end", "rx"), (
            "INSERT INTO meter_comm (meter_id, last_interval_end, reading_rx_at) VALUES "), " " + HEARD_VALUES
    values = ", ".join("(" + ", ".join(f":{c}_{i}" for c in names) + ")" for i in range(n))
    return statement(head + values + tail)
STATUS = statement(
    "INSERT INTO meter_comm (meter_id, status, status_at, status_rx_at) VALUES (:meter_id, :status, :at, :rx) "
    "ON CONFLICT (meter_id) DO UPDATE SET status = excluded.status, status_at = excluded.status_at, "
    "status_rx_at = excluded.status_rx_at "
    "WHERE (meter_comm.status_at IS NULL OR excluded.status_at >= meter_comm.status_at) "
    # a (retained) status older than the meter's newest reading is stale: the reading says more
    "AND (meter_comm.last_interval_end IS NULL OR excluded.status_at >= meter_comm.last_interval_end)"
)
READING_COUNT = statement("SELECT COUNT(*) FROM readings")
ALL_KEYS = statement("SELECT meter_id, seq FROM readings ORDER BY meter_id, seq")
METER_KEYS = statement("SELECT meter_id, seq FROM readings WHERE meter_id = :meter_id ORDER BY seq")
COMM = statement(f"SELECT {COLUMNS} FROM meter_comm WHERE meter_id = :meter_id")
COMMS = statement(f"SELECT {COLUMNS} FROM meter_comm WHERE meter_id IN :meter_ids", "meter_ids")
_SILENT = ("FROM meter_comm WHERE last_interval_end < :end OR (status IN :down "
           "AND (last_interval_end IS NULL OR status_at >= last_interval_end))")
NO_COMMUNICATION = statement("SELECT meter_id " + _SILENT, "down")
NO_COMMUNICATION_COUNT = statement("SELECT COUNT(*) " + _SILENT, "down")
# The literal states match the partial index of schema step 11, so both engines use it.
_DOWN_LITERALS = ", ".join(repr(s) for s in DOWN_STATES)
REGISTERED_PREFECTURES = statement("SELECT DISTINCT prefecture FROM places")


@lru_cache(maxsize=64)
def down_candidates_sql(prefectures: int) -> TextClause:
    """The registered meters of ``prefectures`` prefectures (bound in order, twice) that may be down.

    Two index range scans per prefecture, disjoint, united: the stale (newest reading older than the
    closed window) through ``(prefecture, last_interval_end)``, the last gasps and Last Wills newer than
    it through the partial ``(prefecture, status)``; an OR of the two would make either engine scan every
    meter. The evidence carries its registration's prefecture (schema step 11), so the cost follows the
    region's own candidates: an unregistered meter's is NULL, never in the list. The prefectures are
    binds: a region's statement is compiled once."""
    def region(tag: str) -> str:
        return f"prefecture IN ({', '.join(f':{tag}{i}' for i in range(prefectures))})"

    return statement(
        f"SELECT {COLUMNS} FROM meter_comm WHERE {region('s')} AND last_interval_end < :stale_before UNION ALL "
        f"SELECT {COLUMNS} FROM meter_comm WHERE {region('d')} AND status IN ({_DOWN_LITERALS}) "
        # unary + keeps SQLite off (prefecture, last_interval_end) here: that range is the region's every
        # meter heard this window; PostgreSQL picks the partial index anyway
        "AND +last_interval_end >= :fresh_from"
    )


def _comm(row: Sequence[Any]) -> MeterComm:
    meter_id, last_end, rx, status, status_at, status_rx = row
    return MeterComm(
        meter_id=meter_id, last_interval_end=from_epoch(last_end), reading_rx_at=from_epoch(rx),
        status=MeterState(status) if status else None, status_at=from_epoch(status_at), status_rx_at=from_epoch(status_rx),
    )


def _body(payload: dict[str, Any] | str) -> str:
    """The reading's JSON as received (text), or built from a dict."""
    return payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)


class OutsidePartitions(ValueError):
    """A reading whose day has no partition and gets none (:meth:`ReadingPartitions.partition_refusal`)."""


class Readings(ReadingPartitions):
    def store_readings(self, readings: Sequence[Reading], received_at: datetime) -> int:
        """Store readings, deduplicated on (meter_id, seq); return how many were new. Each meter's last
        word takes the newest interval end once. A reading outside the partitioned days raises
        :class:`OutsidePartitions` before anything is written."""
        if not readings:
            return 0
        rx = to_epoch(received_at)
        rows = [
            (r.meter_id, r.seq, r.interval_start.timestamp(), r.interval_end.timestamp(),
             r.payload if type(r.payload) is str else _body(r.payload), rx)
            for r in readings
        ]
        newest: dict[str, float] = {}
        for meter, _, _, end, _, _ in rows:  # epoch seconds taken once: an aware time's costs a conversion
            if newest.get(meter, float("-inf")) < end:
                newest[meter] = end
        heard = sorted(newest.items())  # sorted: a stable lock order between writers
        if self.partitioned:
            by_end = {r.interval_end: r for r in readings}  # a batch is mostly one window: check each end once
            for end, r in by_end.items():
                if reason := self.partition_refusal(end, received_at):
                    raise OutsidePartitions(f"reading {r.meter_id}/{r.seq}: {reason}")
            self._ensure_days({day_of(end.timestamp()) for end in by_end})
            # one statement per batch; SQLite, embedded, has no round trips to save
            return int(self._scalar(BULK_STORE, {"rows": json.dumps([r[:5] for r in rows]), "rx": rx,
                                                 "heard": json.dumps(heard)}))
        with self.transaction():
            new = self._insert_rows("readings", rows)
            self._insert_rows("heard", [(m, end, rx) for m, end in heard])
        return new

    def _insert_rows(self, kind: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """``rows`` through :func:`_rows_sql`, ``ROWS_PER_STATEMENT`` to a statement; the rows changed."""
        k = ROWS_PER_STATEMENT
        whole = len(rows) - len(rows) % k
        n = self._executemany(_rows_sql(kind, k), [tuple(chain.from_iterable(rows[i:i + k])) for i in range(0, whole, k)])
        if whole < len(rows):
            n += self._executemany(_rows_sql(kind, len(rows) - whole), [tuple(chain.from_iterable(rows[whole:]))])
        return n

    def store_statuses(self, events: Sequence[StatusEvent], received_at: datetime) -> None:
        """Keep each meter's newest status by the meter's own time stamp (retained replays are older)."""
        if not events:
            return
        rx = to_epoch(received_at)
        with self.transaction():
            self._executemany(STATUS, sorted((e.meter_id, e.state.value, e.at.timestamp(), rx) for e in events))

    def reading_count(self) -> int:
        return int(self._scalar(READING_COUNT))

    def reading_keys(self, meter_id: str | None = None) -> list[tuple[str, int]]:
        rows = self._query(ALL_KEYS) if meter_id is None else self._query(METER_KEYS, {"meter_id": meter_id})
        return [(m, int(s)) for m, s in rows]

    def meter_comm(self, meter_id: str) -> MeterComm | None:
        rows = self._query(COMM, {"meter_id": meter_id})
        return _comm(rows[0]) if rows else None

    def no_communication(self, window_end: datetime) -> list[str]:
        """Table 2, the no-communication list: meters whose reading for the window ending at
        ``window_end`` is missing, or whose last word was a last gasp or Last Will."""
        return [r[0] for r in self._query(NO_COMMUNICATION, {"end": window_end.timestamp(), "down": DOWN_STATES})]

    def no_communication_count(self, window_end: datetime) -> int:
        """How many meters :meth:`no_communication` would list, without building the list (after a
        collector outage it is the whole fleet)."""
        return int(self._scalar(NO_COMMUNICATION_COUNT, {"end": window_end.timestamp(), "down": DOWN_STATES}))

    def down_candidates(self, window_end: datetime, prefectures: Sequence[str] | None = None) -> list[MeterComm]:
        """Registered meters that may be down: a superset the manager judges row by row; of ``prefectures``
        only (a region's manager), or of every prefecture registrations name.

        Monitoring starts at a meter's first reading: a meter never heard from is not "silent"."""
        return [_comm(r) for r in self.down_candidate_rows(window_end, prefectures)]

    def down_candidate_rows(self, window_end: datetime,
                            prefectures: Sequence[str] | None = None) -> list[tuple[Any, ...]]:
        """:meth:`down_candidates` as the rows stored, for a caller that judges only the rows that changed
        (:meth:`comm_of` makes one a :class:`MeterComm`)."""
        region = self.registered_prefectures() if prefectures is None else list(prefectures)
        if not region:
            return []
        end = window_end.timestamp()
        return self._rows(down_candidates_sql(len(region)), [*region, end, *region, end])

    def registered_prefectures(self) -> list[str]:
        """Every prefecture an imported registration named (the operators' search lists their areas)."""
        return sorted(p for (p,) in self._query(REGISTERED_PREFECTURES))

    @staticmethod
    def comm_of(row: Sequence[Any]) -> MeterComm:
        return _comm(row)

    def comms(self, meter_ids: Sequence[str]) -> dict[str, MeterComm]:
        out: dict[str, MeterComm] = {}
        for chunk in chunks(list(meter_ids)):
            for row in self._query(COMMS, {"meter_ids": chunk}):
                out[row[0]] = _comm(row)
        return out
