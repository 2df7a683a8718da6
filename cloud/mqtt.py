"""paho-mqtt 2.x clients for the cloud side: MQTT 5, an account and (optionally) TLS from an
``[mqtt]`` settings section, and optionally persistent sessions.

Every handler connects with a party's settings (``--mqtt-config FILE``, as ``smartmeter broker``
writes them). A broker that refuses the account or the certificate is an error that says why: it
will not go away by retrying, so the handler stops (non-zero, with the reason) instead of waiting.
"""
from __future__ import annotations

import ssl
import threading
import uuid
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.config import MqttSection
from appliance.mqtt_settings import apply_settings, describe_refusal, diagnose_connect


class BrokerRefused(ConnectionError):
    """The broker (or the way to it) refused this party; the message says why, in words."""


def make_client(broker: MqttSection, client_id: str | None = None, manual_ack: bool = False) -> paho.Client:
    """A client carrying ``broker``'s account and TLS settings. On a broker set up by ``smartmeter
    broker`` the client id is the account's user name whatever is asked here."""
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id or broker.username or f"outage-{uuid.uuid4().hex[:10]}",
        protocol=paho.MQTTv5,
        manual_ack=manual_ack,
    )
    apply_settings(client, broker)
    return client


def connect(client: paho.Client, broker: MqttSection, session_expiry_s: int = 0, timeout: float = 10.0,
            receive_maximum: int | None = None) -> None:
    """Connect and start the network thread; with ``session_expiry_s`` the broker keeps the session
    (subscriptions and unacknowledged QoS 1 messages) while this client is away; ``receive_maximum``:
    how many QoS 1 messages the broker may send before this client acknowledges one (MQTT 5
    Receive Maximum; asked for explicitly, since a broker otherwise applies its own small default).
    Raises :class:`BrokerRefused` with the reason when the broker refuses the account or TLS fails."""
    props = Properties(PacketTypes.CONNECT)
    if session_expiry_s:
        props.SessionExpiryInterval = session_expiry_s
    if receive_maximum:
        props.ReceiveMaximum = receive_maximum
    ready = threading.Event()
    refused: list[str] = []
    previous = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(describe_refusal(str(reason_code)))
            ready.set()
            return
        if previous:
            previous(c, userdata, flags, reason_code, properties)
        ready.set()

    def on_disconnect(c, userdata, flags, reason_code, properties):
        if not ready.is_set():  # closed before any CONNACK: TLS, or not an MQTT listener for this client
            refused.append(diagnose_connect(broker.host, broker.port, broker))
            ready.set()

    previous_disconnect = client.on_disconnect
    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive, clean_start=not session_expiry_s,
                       properties=props)
    except (ssl.SSLError, OSError):
        raise BrokerRefused(diagnose_connect(broker.host, broker.port, broker)) from None
    client.loop_start()
    if not ready.wait(timeout):
        client.loop_stop()
        raise BrokerRefused(f"no answer from the MQTT broker {broker.host}:{broker.port} within {timeout:.0f} s; "
                            + diagnose_connect(broker.host, broker.port, broker))
    client.on_disconnect = previous_disconnect
    if refused:
        client.loop_stop()
        client.disconnect()
        raise BrokerRefused(f"the MQTT broker {broker.host}:{broker.port} refused {broker.username or 'an anonymous client'}: "
                            f"{refused[0]}")
    client.on_connect = previous  # later reconnects are the caller's business


def disconnect(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


def start_subscriber(client: paho.Client, broker: MqttSection, topics: list[tuple[str, int]],
                     session_expiry_s: int = 0, timeout: float = 10.0,
                     on_failure: Callable[[str], None] | None = None, receive_maximum: int | None = None) -> None:
    """Connect, (re)subscribe on every connect, and return once the broker granted the subscription.

    A resumed persistent session already holds the subscription, and the broker sends its backlog
    ahead of the SUBACK: waiting for it would race the backlog (a long one would look like a dead
    broker). Then this returns at the CONNACK, and a refusal arriving later goes to ``on_failure``."""
    subscribed = threading.Event()
    resumed = threading.Event()
    refused: list[str] = []

    def on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        if flags.session_present:
            resumed.set()
        c.subscribe(topics)

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            refused.append(f"the broker refused the subscription to {', '.join(t for t, _ in topics)}: "
                           f"{', '.join(failed)} (check this account's ACL)")
            if on_failure is not None and resumed.is_set():
                on_failure(refused[-1])
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    connect(client, broker, session_expiry_s=session_expiry_s, timeout=timeout, receive_maximum=receive_maximum)
    client.on_connect = on_connect  # resubscribe after every reconnect
    if resumed.is_set():
        subscribed.set()  # from here on a refusal is reported through on_failure
        return
    if not subscribed.wait(timeout):
        raise TimeoutError("no SUBACK from the MQTT broker")
    if refused:
        raise BrokerRefused(refused[0])
