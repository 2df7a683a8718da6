"""The meter's CONNECT as it goes on the wire: its session outlives the will delay and a reconnect
resumes it, so a broker that follows MQTT 5 to the letter (EMQX) withholds ``offline`` during a blink."""
from __future__ import annotations

import socket

import pytest
from mqtt_wire import parse_connect, read_connect
from paho.mqtt.properties import Properties

from appliance.clock import SystemClock
from appliance.mqtt import MqttUplink


def _connect_of(meter: str, will_delay: int) -> tuple[int, Properties, Properties]:
    """What the meter's uplink sends first, read by a bare socket standing in for the broker."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(10)
    uplink = MqttUplink(meter, "127.0.0.1", server.getsockname()[1], SystemClock(), will_delay=will_delay)
    uplink.start()
    try:
        return parse_connect(read_connect(server))
    finally:
        uplink.client.loop_stop()
        server.close()


@pytest.mark.parametrize("will_delay", [30, 5])
def test_the_session_outlives_the_will_delay_and_a_reconnect_resumes_it(will_delay):
    flags, props, will = _connect_of("MTR-W1", will_delay)
    assert flags & 0x04, "the will is set"
    assert not flags & 0x02, "Clean Start 0: a reconnect within the delay resumes the session"
    assert will.WillDelayInterval == will_delay
    assert props.SessionExpiryInterval >= will_delay


def test_without_a_will_delay_the_session_ends_with_the_connection():
    flags, props, _ = _connect_of("MTR-W2", 0)
    assert flags & 0x02 and getattr(props, "SessionExpiryInterval", 0) == 0
