"""An MQTT client set up from ``[mqtt]`` settings: its account and, with ``tls``, the broker's CA and
this party's certificate. One place for the meter's uplink, the cloud handlers and the tools."""
from __future__ import annotations

import ssl

import paho.mqtt.client as paho

from .config import MqttSection


def apply_settings(client: paho.Client, m: MqttSection) -> None:
    if m.username is not None:
        client.username_pw_set(m.username, m.password)
    if m.tls:
        client.tls_set(ca_certs=str(m.ca_file) if m.ca_file else None,
                       certfile=str(m.cert_file) if m.cert_file else None,
                       keyfile=str(m.key_file) if m.key_file else None, cert_reqs=ssl.CERT_REQUIRED,
                       tls_version=ssl.PROTOCOL_TLS_CLIENT)


CONNECT_REFUSALS = {
    "Not authorized": "the broker refused the account (user name or password wrong, or not allowed)",
    "Bad user name or password": "the broker refused the user name or password",
}


def describe_refusal(reason: str) -> str:
    """A broker's CONNACK reason in words an installer can act on."""
    return CONNECT_REFUSALS.get(reason, reason)
