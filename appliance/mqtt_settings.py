"""An MQTT client set up from ``[mqtt]`` settings: its account and, with ``tls``, the broker's CA and
this party's certificate. One place for the meter's uplink, the cloud handlers and the tools."""
from __future__ import annotations

import ssl

import paho.mqtt.client as paho

from .config import MqttSection
from .uplink import LinkProblem


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


def tls_context(m: MqttSection) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(m.ca_file) if m.ca_file else None)
    if m.cert_file and m.key_file:
        context.load_cert_chain(str(m.cert_file), str(m.key_file))
    return context


def diagnose_connect(host: str, port: int, m: MqttSection, timeout: float = 5.0) -> str:
    """:func:`diagnose`'s words."""
    return diagnose(host, port, m, timeout)[1]


def diagnose(host: str, port: int, m: MqttSection, timeout: float = 5.0) -> tuple[LinkProblem, str]:
    """Why a connection to the broker fails below MQTT: its kind, and the words: unreachable, or the
    TLS reason (unknown CA, expired certificate, a name that does not match). paho retries such
    failures silently; the uplink asks here once per failure kind, so the installer sees the cause."""
    import socket

    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        return LinkProblem.UNREACHABLE, f"cannot reach the broker {host}:{port}: {exc.strerror or exc}"
    with sock:
        if not m.tls:
            return LinkProblem.CLOSED, (f"the broker {host}:{port} closed the connection "
                                        "(does it want TLS? then set mqtt.tls = true)")
        try:
            with tls_context(m).wrap_socket(sock, server_hostname=host) as tls:
                # TLS 1.3: the broker judges this meter's certificate after the handshake; its verdict
                # (an alert) arrives with the first read
                tls.settimeout(min(timeout, 1.0))
                try:
                    tls.recv(1)
                except TimeoutError:
                    pass
                return LinkProblem.CLOSED, f"TLS to {host}:{port} works; the broker closed the connection after it"
        except ssl.SSLCertVerificationError as exc:
            return LinkProblem.SERVER_CERT_REFUSED, (f"the broker's certificate was refused: {exc.verify_message} "
                                                     "(check mqtt.ca_file)")
        except ssl.SSLError as exc:
            reason = exc.reason or str(exc)
            if "CERTIFICATE_EXPIRED" in str(reason).upper():
                return LinkProblem.CERT_EXPIRED, "the broker refused this meter's certificate: it has expired (issue a new one)"
            if any(alert in str(reason).upper() for alert in ("UNKNOWN_CA", "CERTIFICATE_REQUIRED", "BAD_CERTIFICATE",
                                                               "DECRYPT_ERROR")):
                return LinkProblem.CERT_REFUSED, "the broker refused this meter's certificate (not signed by its CA, or missing)"
            return LinkProblem.CLOSED, f"TLS with {host}:{port} failed: {reason}"
        except OSError as exc:
            return LinkProblem.CLOSED, f"TLS with {host}:{port} failed: {exc}"
