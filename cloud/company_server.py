"""An example company server: what a power or data-utilization company runs to receive meter data.

It subscribes to its own ``companies/{code}/#`` topics at QoS 1 with a persistent MQTT 5 session
(the broker holds messages while the server is down), stores each reading once, deduplicating on
``(meter_id, seq)`` (events on ``(meter_id, event_id)``), and acknowledges a message only after it
is stored. The demo and the tests use it to show who received what.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS data (
    meter_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (meter_id, seq));
CREATE TABLE IF NOT EXISTS events (
    meter_id TEXT NOT NULL, event_id INTEGER NOT NULL, event TEXT NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (meter_id, event_id));
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class Received:
    data: int
    events: int
    duplicates: int
    rejected: int


class CompanyServer:
    def __init__(self, code: str, host: str, port: int, db_path: str | Path, *, username: str | None = None,
                 password: str | None = None, share_group: str | None = None) -> None:
        self.code = code
        self.host, self.port = host, port
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._lock = threading.Lock()
        topic = f"companies/{code}/meters/+/+"
        self.topic = f"$share/{share_group}/{topic}" if share_group else topic
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"company-{code}-{share_group or 'main'}",
                                  protocol=mqtt.MQTTv5)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.on_message = self._on_message

    def start(self) -> "CompanyServer":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps our queue for a week of downtime
        self.client.connect_async(self.host, self.port, clean_start=False, properties=props)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("company %s: broker refused: %s", self.code, reason_code)
            return
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        # Runs before paho sends the PUBACK: a message is acknowledged only once it is stored.
        try:
            body = json.loads(msg.payload)
            meter_id = str(body["meter_id"])
            if body.get("company_code") != self.code:
                raise ValueError(f"addressed to {body.get('company_code')!r}, not {self.code!r}")
            kind = msg.topic.rsplit("/", 1)[-1]
            with self._lock:
                if kind == "data":
                    new = self.db.execute("INSERT OR IGNORE INTO data VALUES(?,?,?)",
                                          (meter_id, int(body["seq"]), msg.payload.decode())).rowcount
                elif kind == "events":
                    new = self.db.execute("INSERT OR IGNORE INTO events VALUES(?,?,?,?)",
                                          (meter_id, int(body["event_id"]), str(body["event"]),
                                           msg.payload.decode())).rowcount
                else:
                    raise ValueError(f"unknown topic {msg.topic}")
                if not new:
                    self._count("duplicates")
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("company %s: rejected message on %s: %s", self.code, msg.topic, exc)
            with self._lock:
                self._count("rejected")

    def _count(self, name: str) -> None:
        self.db.execute("INSERT INTO counters VALUES(?, 1) ON CONFLICT(name) DO UPDATE SET value=value+1", (name,))

    # -- what the company has -------------------------------------------------------------
    def data(self, meter_id: str | None = None) -> list[dict[str, Any]]:
        return read_data(self.db, meter_id)

    def events(self, meter_id: str | None = None) -> list[dict[str, Any]]:
        return read_events(self.db, meter_id)

    def received(self) -> Received:
        return summary(self.db)


def read_data(db: sqlite3.Connection, meter_id: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT body FROM data" + (" WHERE meter_id=?" if meter_id else "") + " ORDER BY meter_id, seq"
    return [json.loads(r[0]) for r in db.execute(q, (meter_id,) if meter_id else ())]


def read_events(db: sqlite3.Connection, meter_id: str | None = None) -> list[dict[str, Any]]:
    q = "SELECT body FROM events" + (" WHERE meter_id=?" if meter_id else "") + " ORDER BY meter_id, event_id"
    return [json.loads(r[0]) for r in db.execute(q, (meter_id,) if meter_id else ())]


def summary(db: sqlite3.Connection) -> Received:
    counters = dict(db.execute("SELECT name, value FROM counters"))
    return Received(
        data=db.execute("SELECT count(*) FROM data").fetchone()[0],
        events=db.execute("SELECT count(*) FROM events").fetchone()[0],
        duplicates=counters.get("duplicates", 0),
        rejected=counters.get("rejected", 0),
    )
