"""The receivers under test, on real components: a hostile publisher on the broker, the manager's API."""
from __future__ import annotations

import http.client
import json
from datetime import datetime

from appliance.clock import JST, ManualClock
from operators import TEST_KEY, operator_accounts


def hostile(broker, name: str = "hostile"):
    """A party that may write as any meter (the broker's ``simulator`` kind): the receivers' own checks
    are under test here, behind the ACLs that would stop most of this on a production broker."""
    from cloud.mqtt import make_client

    settings = broker.account("simulator", name)
    client = make_client(settings)
    client.connect(settings.host, settings.port)
    client.loop_start()
    return client


class Publisher:
    """A party on the broker that may send anything on any meter's topics."""

    def __init__(self, broker) -> None:
        self.broker = broker
        self.client = hostile(broker)

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def send_once(broker, topic: str, payload: bytes) -> bool:
    """Publish one message on a connection of its own; False if the broker would not take it (it cuts
    off a party that sends a malformed topic, and paho would resend it on every reconnect)."""
    client = hostile(broker, "hostile-once")  # not the Publisher's account: one account is one session
    try:
        info = client.publish(topic, payload, qos=1)
        info.wait_for_publish(1)  # a loopback broker acknowledges in milliseconds
        return info.is_published()
    except (RuntimeError, ValueError):
        return False
    finally:
        client.disconnect()
        client.loop_stop()


class ApiRig:
    """The outage manager and its HTTP API on a SQLite file, with a daytime clock."""

    def __init__(self, db_path) -> None:
        from cloud.outage.api import OutageApi
        from cloud.outage.mail import Sender
        from cloud.outage.manager import OutageManager
        from cloud.outage.storage import open_storage

        self.clock = ManualClock(datetime(2026, 11, 23, 10, 0, tzinfo=JST))
        self.storage = open_storage(f"sqlite:///{db_path}")
        self.manager = OutageManager(self.storage, self.clock)
        accounts, self.operator, self.viewer = operator_accounts(db_path.parent)
        self.api = OutageApi(self.manager, Sender(TEST_KEY), accounts, port=0).start()
        self.host, self.port = self.api.server.server_address[:2]

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 10) -> tuple[int, dict]:
        """One request on its own connection, as the operator unless other ``headers`` are given ({}:
        anonymous); the answer's status and JSON body."""
        headers = self.operator if headers is None else headers
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json", **headers})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def post(self, path: str, obj, headers: dict | None = None) -> tuple[int, dict]:
        """As the operator, unless other ``headers`` are given."""
        return self.call("POST", path, json.dumps(obj, ensure_ascii=False).encode(), headers=headers)

    def close(self) -> None:
        self.api.stop()
        self.storage.close()
