"""paho-mqtt 2.x clients for the pipeline: MQTT 5, optionally persistent sessions."""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def make_client(client_id: str | None = None, manual_ack: bool = False) -> paho.Client:
    return paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or f"outage-{uuid.uuid4().hex[:10]}",
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )


def connect(client: paho.Client, host: str, port: int, session_expiry_s: int = 0, timeout: float = 10.0) -> None:
    """Connect and start the network thread; with ``session_expiry_s`` the broker keeps the session
    (subscriptions and unacknowledged QoS 1 messages) while this client is away."""
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    ready = threading.Event()
    previous = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties):
        if previous:
            previous(c, userdata, flags, reason_code, properties)
        if not reason_code.is_failure:
            ready.set()

    client.on_connect = on_connect
    client.connect(host, port, keepalive=30, clean_start=not session_expiry_s, properties=props)
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise TimeoutError(f"no CONNACK from MQTT broker {host}:{port}")


def disconnect(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


def start_subscriber(client: paho.Client, host: str, port: int, topics: list[tuple[str, int]],
                     session_expiry_s: int = 0, timeout: float = 10.0,
                     on_failure: Callable[[str], None] | None = None) -> None:
    """Connect, (re)subscribe on every connect, and return once the broker granted the subscription.

    A resumed persistent session already holds the subscription, and the broker sends its backlog
    ahead of the SUBACK: waiting for it would race the backlog (a long one would look like a dead
    broker). Then this returns at the CONNACK, and a refusal arriving later goes to ``on_failure``."""
    subscribed = threading.Event()
    resumed = threading.Event()
    refused: list[str] = []

    def on_connect(c, userdata, flags, reason_code, properties):
        if flags.session_present:
            resumed.set()
        c.subscribe(topics)

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            refused.append(f"subscription refused: {failed}")
            if on_failure is not None and resumed.is_set():
                on_failure(refused[-1])
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    connect(client, host, port, session_expiry_s=session_expiry_s, timeout=timeout)
    if resumed.is_set():
        subscribed.set()  # from here on a refusal is reported through on_failure
        return
    if not subscribed.wait(timeout):
        raise TimeoutError("no SUBACK from the MQTT broker")
    if refused:
        raise PermissionError(refused[0])
