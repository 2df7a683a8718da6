"""An MQTT CONNECT as a client sends it, read by a bare socket standing in for the broker: what a
client asks of the broker (session, will, Receive Maximum), checked on the wire."""
from __future__ import annotations

import socket

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def read_connect(server: socket.socket) -> bytes:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(5)
        head = conn.recv(1)
        assert head == b"\x10", "the first packet is CONNECT"
        length, multiplier = 0, 1
        while True:
            byte = conn.recv(1)[0]
            length += (byte & 0x7F) * multiplier
            multiplier *= 128
            if not byte & 0x80:
                break
        body = b""
        while len(body) < length:
            body += conn.recv(length - len(body))
        return body


def parse_connect(body: bytes) -> tuple[int, Properties, Properties]:
    """Connect flags, CONNECT properties and will properties (MQTT 5, 3.1.2 and 3.1.3)."""
    assert body[:7] == b"\x00\x04MQTT\x05"
    flags = body[7]
    props = Properties(PacketTypes.CONNECT)
    used = props.unpack(body[10:])[1]
    rest = body[10 + used:]
    client_len = int.from_bytes(rest[:2], "big")
    rest = rest[2 + client_len:]
    will = Properties(PacketTypes.WILLMESSAGE)
    if flags & 0x04:  # a will follows the client id, its properties first
        will.unpack(rest)
    return flags, props, will
