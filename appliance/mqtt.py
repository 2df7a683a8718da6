"""The MQTT uplink (paho-mqtt, MQTT 5) to the grid operator's and the companies' broker.

It publishes ``meters/{id}/status`` (retained) with a Last Will ``offline`` delayed by
``will_delay`` so a short blink does not look like a dead meter, and hands every other message
to the broker at QoS 1. Commands for the meter arrive on ``meters/{id}/commands``; retained
commands are ignored (a stale or replayed command must never act).
"""
from __future__ import annotations

import json
import logging
import threading
from typing import Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from . import topics
from .clock import Clock, iso
from .config import MqttSection
from .mqtt_settings import apply_settings, diagnose
from .uplink import MAX_COMMAND_BYTES, LinkProblem, LinkState

log = logging.getLogger(__name__)


class MqttUplink:
    def __init__(self, meter_id: str, host: str, port: int, clock: Clock, *, username: str | None = None,
                 password: str | None = None, tls: bool = False, keepalive: int = 30, will_delay: int = 30,
                 on_command: Callable[[bytes], None] | None = None, client_id: str | None = None,
                 settings: MqttSection | None = None) -> None:
        """``settings``: the config's ``[mqtt]`` (account, CA and client certificate); it replaces
        ``username``/``password``/``tls``."""
        self.meter_id = meter_id
        self.host, self.port = host, port
        self.clock = clock
        self.on_command = on_command
        self._state = LinkState(False, f"connecting to {host}:{port}")
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Callable[[], None], Callable[[], None]]] = {}  # mid -> on_ack, on_lost
        self._early: dict[int, str] = {}  # mid -> "acked" | "lost", when that came before _publish noted the mid
        self._refused: list[Callable[[], None]] = []  # on_lost of messages the broker refused
        self._stopping = False
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"meter-{meter_id}",
                                  protocol=mqtt.MQTTv5)
        self.settings = settings or MqttSection(host=host, port=port, username=username, password=password, tls=tls)
        apply_settings(self.client, self.settings)
        self.client.on_connect_fail = self._on_connect_fail
        self.keepalive = keepalive
        will_props = Properties(PacketTypes.WILLMESSAGE)
        will_props.WillDelayInterval = will_delay
        self.will_delay = will_delay
        self.client.will_set(topics.status(meter_id), self._status_payload("offline"), qos=1, retain=True,
                             properties=will_props)
        self.client.max_inflight_messages_set(100)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        # MQTT 5 (3.1.2.5, 3.1.3.2.2) publishes the will when its delay has passed or the session ends,
        # whichever is first, and withholds it only if the client comes back to the same session
        # (Clean Start 0) within the delay: so the session outlives the delay and a reconnect resumes it.
        props.SessionExpiryInterval = self.will_delay
        props.MaximumPacketSize = MAX_COMMAND_BYTES + 1024  # the broker drops a larger message for us (topic, header)
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive, clean_start=self.will_delay == 0,
                                  properties=props)
        self.client.loop_start()

    def stop(self, final_state: str = "offline") -> None:
        """Graceful stop: say so on the status topic, then disconnect."""
        self._stopping = True
        if self._state.connected:
            done = threading.Event()
            self._publish(topics.status(self.meter_id), self._status_payload(final_state), done.set, retain=True)
            done.wait(2)
        self.client.disconnect()
        self.client.loop_stop()

    def publish_status(self, state: str, on_ack: Callable[[], None] | None = None) -> None:
        """``online`` | ``offline`` | ``power_fail`` (last gasp) | ``power_restored``, straight to the
        client (QoS 1, retained), not through the outbox; ``on_ack`` runs at the broker's PUBACK."""
        self._publish(topics.status(self.meter_id), self._status_payload(state), on_ack or _ignore, retain=True)

    # -- Uplink -----------------------------------------------------------------------
    def state(self) -> LinkState:
        return self._state

    def publish(self, topic: str, payload: bytes, on_ack: Callable[[], None],
                on_lost: Callable[[], None] | None = None) -> bool:
        if not self._state.connected:
            return False
        return self._publish(topic, payload, on_ack, retain=topics.retained(topic), on_lost=on_lost)

    def _publish(self, topic: str, payload: bytes, on_ack: Callable[[], None], retain: bool = False,
                 on_lost: Callable[[], None] | None = None) -> bool:
        # Never hold our lock while calling into paho: paho holds its own lock while it runs
        # on_publish, so nesting them the other way round would deadlock.
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return False
        if on_lost is None:  # status: what was lost with a connection is said again on the next one
            on_lost = lambda: self._publish(topic, payload, on_ack, retain)  # noqa: E731
        # NO_CONN: the message is dropped at the next connect and reported lost (see _on_connect).
        with self._lock:
            early = self._early.pop(info.mid, None)  # the PUBACK (or the loss) beat us here
            if early is None:
                self._pending[info.mid] = (on_ack, on_lost)
        if early == "acked":
            on_ack()
        elif early == "lost":
            on_lost()
        return True

    # -- paho callbacks (network thread) --------------------------------------------------
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            detail = f"broker {self.host}:{self.port} refused the connection: {reason_code}"
            if self._state.detail != detail:
                log.error("%s (check mqtt.username / mqtt.password)", detail)
            busy = str(reason_code) in ("Server unavailable", "Server busy")
            self._state = LinkState(False, detail, LinkProblem.UNREACHABLE if busy else LinkProblem.ACCOUNT_REFUSED)
            return
        log.info("connected to broker %s:%s", self.host, self.port)
        self._report_lost(client.drop_out_messages())  # before paho's own resend of them, which follows
        self._state = LinkState(True, f"connected to {self.host}:{self.port}")
        self._publish(topics.status(self.meter_id), self._status_payload("online"), _ignore, retain=True)
        # retainAsPublished: a retained command keeps its retain flag even when it arrives live, so
        # _on_message can tell it apart (by default a broker clears the flag on live messages).
        client.subscribe(topics.commands(self.meter_id), options=SubscribeOptions(qos=1, retainAsPublished=True))

    def _on_connect_fail(self, client, userdata) -> None:
        """paho retries a failed TCP/TLS connection silently: find out why, once per reason, and say so."""
        problem, detail = diagnose(self.host, self.port, self.settings)
        if self._state.detail != detail:
            log.error("cannot connect to the broker: %s; retrying with backoff", detail)
        self._state = LinkState(False, detail, problem)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self._stopping:
            self._state = LinkState(False, "stopped")
        elif self._state.connected:
            log.warning("lost the broker %s:%s (%s); readings queue in the store", self.host, self.port, reason_code)
            self._state = LinkState(False, f"disconnected from {self.host}:{self.port}: {reason_code}", LinkProblem.LOST)
        elif "refused the connection" not in self._state.detail:
            self._on_connect_fail(client, userdata)  # dropped before MQTT said anything: TLS or the network

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            entry = self._pending.pop(mid, None)
            if entry is None and not reason_code.is_failure:
                self._early[mid] = "acked"
            elif entry is not None and reason_code.is_failure:
                self._refused.append(entry[1])
        if reason_code.is_failure:
            log.error("broker rejected message %s: %s (it stays queued and is sent again on the next connection)",
                      mid, reason_code)
        elif entry:
            entry[0]()

    def _report_lost(self, dropped) -> None:
        """paho would publish again, on the new connection, what was unacknowledged on the old one;
        the sender decides that instead (the outbox pump sends its rows again, oldest first), so no
        message is ever twice in flight on one connection."""
        with self._lock:
            refused, self._refused = self._refused, []
        for on_lost in refused:
            on_lost()
        for m in dropped:
            with self._lock:
                entry = self._pending.pop(m.mid, None)
                if entry is None:
                    self._early[m.mid] = "lost"
            if entry:
                entry[1]()

    def _on_message(self, client, userdata, msg) -> None:
        if msg.retain:
            log.warning("ignored a retained command on %s: commands must be live", msg.topic)
            return
        if self.on_command:
            try:
                self.on_command(msg.payload)
            except Exception:  # a bad command must never take the uplink down
                log.exception("command handler failed")

    def _status_payload(self, state: str) -> bytes:
        return json.dumps({"state": state, "at": iso(self.clock.now()), "meter_id": self.meter_id}).encode()


def _ignore() -> None:
    """The acknowledgement of a status message needs no action (status is retained state)."""
