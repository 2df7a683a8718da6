"""``smartmeter broker check``: does this broker (a utility's EMQX cluster, a Mosquitto) give the
project every feature it relies on? One line per feature, then exit 0 if all hold, 1 if not.

It connects as the parties do, with their own settings files (``smartmeter broker`` writes them):
a meter, a company and two of the grid operator's handlers. Use accounts made for the check (for
example meter ``PROBE-0001``): it publishes test messages on their topics. Run it before go-live,
and again after every change to the broker's configuration.

The features and why each is needed are in docs/broker.md, "Features the project relies on".
"""
from __future__ import annotations

import argparse
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from appliance.config import MqttSection, load_mqtt_config
from appliance.mqtt_settings import apply_settings
from appliance.wire import MAX_BATCH_BYTES

from .outage.collector import INFLIGHT_NEEDED

WAIT = 5.0  # seconds for any one answer from the broker
WILL_DELAY = 2  # seconds


@dataclass(frozen=True)
class Accounts:
    meter: MqttSection
    company: MqttSection
    operators: tuple[MqttSection, MqttSection]  # two handler accounts: one $share group


@dataclass(frozen=True)
class Result:
    feature: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok    ' if self.ok else 'FAILED'}  {self.feature}: {self.detail}"


@dataclass
class Link:
    """One party's MQTT 5 connection, waited on synchronously: what a check needs to see."""

    settings: MqttSection
    client_id: str | None = None
    clean_start: bool = True
    session_expiry: int = 0
    will: tuple[str, bytes, int] | None = None  # topic, payload, delay in seconds
    manual_ack: bool = False  # acknowledge received messages only when told (as a collector does)
    receive_maximum: int | None = None  # MQTT 5 Receive Maximum asked for in CONNECT
    connack: object | None = None  # the reason code
    session_present: bool = False
    max_packet_size: int | None = None  # as the broker's CONNACK says
    closed_with: object | None = None  # the reason code of a disconnection, once closed
    messages: list[paho.MQTTMessage] = field(default_factory=list)
    acks: dict[int, object] = field(default_factory=dict)  # mid -> PUBACK / SUBACK reason code
    client: paho.Client = field(init=False)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def open(self) -> Link:
        name = self.client_id or self.settings.username or f"probe-{secrets.token_hex(4)}"
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=name, protocol=paho.MQTTv5,
                                  reconnect_on_failure=False, manual_ack=self.manual_ack)
        apply_settings(self.client, self.settings)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _c, _u, m: self._note(lambda: self.messages.append(m))
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._note(lambda: self.acks.__setitem__(mid, rc))
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._note(lambda: self.acks.__setitem__(mid, rcs[0]))
        if self.will is not None:
            props = Properties(PacketTypes.WILLMESSAGE)
            props.WillDelayInterval = self.will[2]
            self.client.will_set(self.will[0], self.will[1], qos=1, properties=props)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        if self.receive_maximum:
            props.ReceiveMaximum = self.receive_maximum
        try:
            self.client.connect(self.settings.host, self.settings.port, keepalive=30, clean_start=self.clean_start,
                                properties=props)
        except OSError as exc:
            self.closed_with = f"no connection: {exc}"
            return self
        self.client.loop_start()
        self.wait(lambda: self.connack is not None or self.closed_with is not None)
        return self

    @property
    def up(self) -> bool:
        return self.connack is not None and not self.connack.is_failure and self.closed_with is None

    def _on_connect(self, _c, _u, flags, rc, props) -> None:
        def note():
            self.connack, self.session_present = rc, bool(flags.session_present)
            self.max_packet_size = getattr(props, "MaximumPacketSize", None)
        self._note(note)

    def _on_disconnect(self, _c, _u, _flags, rc, _props) -> None:
        self._note(lambda: setattr(self, "closed_with", rc))

    def _note(self, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    def wait(self, done: Callable[[], bool], timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(done, timeout)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> object | None:
        """The PUBACK's reason code; None if none came (the connection closed, or the broker is slow)."""
        mid = self.client.publish(topic, payload, qos=1, retain=retain).mid
        self.wait(lambda: mid in self.acks or self.closed_with is not None)
        return self.acks.get(mid)

    def subscribe(self, topic: str) -> object | None:
        """The SUBACK's reason code; None if none came."""
        _, mid = self.client.subscribe(topic, qos=1)
        self.wait(lambda: mid in self.acks or self.closed_with is not None)
        return self.acks.get(mid)

    def payloads(self, topic: str | None = None) -> list[bytes]:
        with self._changed:
            return [m.payload for m in self.messages if topic is None or m.topic == topic]

    def drop(self) -> None:
        """Lose the connection without a DISCONNECT, as a meter does in a power cut."""
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
        self.wait(lambda: self.closed_with is not None)
        self.client.loop_stop()

    def close(self) -> None:
        if self.closed_with is None and self.connack is not None:
            self.client.disconnect()
            self.wait(lambda: self.closed_with is not None, 2)  # gone before the next link takes its id
        if self.connack is not None:
            self.client.loop_stop()


def _code(rc) -> str:
    return "none" if rc is None else f"{rc.getName()} (0x{rc.value:02x})" if hasattr(rc, "getName") else str(rc)


def _refused(rc) -> bool:
    return rc is not None and getattr(rc, "is_failure", False)


class Probe:
    """The checks, in the order they are printed; each uses its own connections and topics."""

    def __init__(self, accounts: Accounts) -> None:
        self.a = accounts
        self.meter = accounts.meter.username
        self.nonce = secrets.token_hex(4)  # no message from an earlier run is taken for this one's

    def run(self) -> list[Result]:
        checks = [self.sign_in, self.refusals, self.persistent_session, self.will_delay, self.retained,
                  self.shared_subscription, self.inflight_window, self.acl_denial, self.packet_size, self.takeover]
        results = []
        for check in checks:
            result = check()
            results.append(result)
            if check == self.sign_in and not result.ok:
                break  # without the accounts no other check can run
        return results

    def _link(self, settings: MqttSection, **kw) -> Link:
        return Link(settings, **kw).open()

    def sign_in(self) -> Result:
        feature = "MQTT 5 sign-in"
        names = ("meter", "company", "operator", "second operator")
        links = [self._link(s) for s in (self.a.meter, self.a.company, *self.a.operators)]
        try:
            bad = [f"{n} {s.username}: {_code(link.connack) if link.connack else link.closed_with}"
                   for n, s, link in zip(names, (self.a.meter, self.a.company, *self.a.operators), links) if not link.up]
            if bad:
                return Result(feature, False, "refused: " + "; ".join(bad))
            return Result(feature, True, "each account connects with MQTT 5 (CONNACK Success)")
        finally:
            for link in links:
                link.close()

    def refusals(self) -> Result:
        feature = "refusals say why"
        wrong = self._link(msgspec.structs.replace(self.a.meter, password="not-" + secrets.token_hex(8)))
        anon = self._link(msgspec.structs.replace(self.a.meter, username=None, password=None),
                          client_id=f"probe-anon-{self.nonce}")
        try:
            if wrong.up or anon.up:
                return Result(feature, False, ("a wrong password" if wrong.up else "a client with no account")
                              + " was let in")
            if not _refused(wrong.connack):
                return Result(feature, False, f"a wrong password was refused without an MQTT 5 reason code "
                                              f"({wrong.closed_with})")
            return Result(feature, True, f"a wrong password gets CONNACK {_code(wrong.connack)}; "
                                         f"no account gets {_code(anon.connack) if anon.connack else 'no connection'}")
        finally:
            wrong.close()
            anon.close()

    def persistent_session(self) -> Result:
        feature = "persistent session"
        topic, payload = f"meters/{self.meter}/commands", f"probe-session-{self.nonce}".encode()
        away = self._link(self.a.meter, session_expiry=60)
        away.subscribe(topic)
        away.close()
        sender = self._link(self.a.company)
        sent = sender.publish(topic, payload)
        sender.close()
        back = self._link(self.a.meter, clean_start=False, session_expiry=0)  # the session ends with this link
        try:
            got = back.wait(lambda: payload in back.payloads(topic))
            if not back.session_present:
                return Result(feature, False, "the session was not kept across a reconnection (session present = 0)")
            if not got:
                return Result(feature, False, f"a QoS 1 message sent while the receiver was away (PUBACK "
                                              f"{_code(sent)}) did not arrive when it came back")
            return Result(feature, True, "the session was kept, and a QoS 1 message sent while the receiver "
                                         "was away arrived when it came back")
        finally:
            back.close()

    def will_delay(self) -> Result:
        feature = "will delay"
        topic, payload = f"meters/{self.meter}/status", f"probe-will-{self.nonce}".encode()
        watcher = self._link(self.a.operators[0])
        watcher.subscribe(topic)
        meter = self._link(self.a.meter, session_expiry=60, will=(topic, payload, WILL_DELAY))
        start = time.monotonic()
        meter.drop()
        try:
            watcher.wait(lambda: payload in watcher.payloads(topic), WILL_DELAY + WAIT)
            took = time.monotonic() - start
            if payload not in watcher.payloads(topic):
                return Result(feature, False, f"the will was not published within {WILL_DELAY + WAIT:.0f} s of "
                                              "a lost connection")
            if took < WILL_DELAY * 0.75:
                return Result(feature, False, f"the will came after {took:.1f} s, not after its delay of "
                                              f"{WILL_DELAY} s (a short blink would look like a dead meter)")
            return Result(feature, True, f"the will came {took:.1f} s after the connection was lost "
                                         f"(delay {WILL_DELAY} s)")
        finally:
            watcher.close()
            self._link(self.a.meter, session_expiry=0).close()  # end the session the dropped link left

    def retained(self) -> Result:
        feature = "retained messages"
        topic, payload = f"meters/{self.meter}/status", f"probe-retained-{self.nonce}".encode()
        meter = self._link(self.a.meter)
        meter.publish(topic, payload, retain=True)
        late = self._link(self.a.operators[0])
        try:
            late.subscribe(topic)
            late.wait(lambda: payload in late.payloads(topic))
            kept = [m for m in late.messages if m.payload == payload]
            if not kept or not kept[0].retain:
                return Result(feature, False, "a subscriber that came later did not get the retained status")
            return Result(feature, True, "a subscriber that came later got the last status, marked retained")
        finally:
            meter.publish(topic, b"", retain=True)  # clear it: a probe's status is nobody's
            meter.close()
            late.close()

    def shared_subscription(self) -> Result:
        feature = "shared subscriptions"
        count, topic = 20, f"meters/{self.meter}/interval"
        members = [self._link(s) for s in self.a.operators]
        meter = self._link(self.a.meter)
        try:
            codes = [m.subscribe(f"$share/probe-{self.nonce}/{topic}") for m in members]
            if not all(c is not None and not _refused(c) for c in codes):
                return Result(feature, False, f"$share/GROUP/... was refused: {', '.join(map(_code, codes))}")
            sent = [f"probe-share-{self.nonce}-{i}".encode() for i in range(count)]
            for payload in sent:
                meter.publish(topic, payload)
            members[0].wait(lambda: sum(len(m.payloads(topic)) for m in members) >= count)
            time.sleep(0.5)  # a copy to the second member would come now
            got = [p for m in members for p in m.payloads(topic)]
            if sorted(got) != sorted(sent):
                twice = len(got) - len(set(got))
                return Result(feature, False, f"of {count} messages the group got {len(set(got) & set(sent))}, "
                                              f"{twice} of them more than once")
            split = " + ".join(str(len(m.payloads(topic))) for m in members)
            return Result(feature, True, f"each of {count} messages reached exactly one member ({split})")
        finally:
            for link in (*members, meter):
                link.close()

    def inflight_window(self) -> Result:
        """A collector acknowledges a message only once its batch is committed: the broker must keep
        sending while INFLIGHT_NEEDED messages wait unacknowledged, or the collector is held to a trickle."""
        feature = "unacknowledged messages in flight"
        topic, needed = f"meters/{self.meter}/interval", INFLIGHT_NEEDED
        receiver = self._link(self.a.operators[0], manual_ack=True, receive_maximum=needed)  # as a collector asks
        meter = self._link(self.a.meter)
        try:
            receiver.subscribe(topic)
            sent = [meter.client.publish(topic, f"probe-window-{self.nonce}-{i}".encode(), qos=1) for i in range(needed)]
            receiver.wait(lambda: len(receiver.payloads(topic)) >= needed, timeout=max(WAIT, needed / 500))
            held = len(receiver.payloads(topic))
            for m in list(receiver.messages):
                receiver.client.ack(m.mid, m.qos)
            sent[-1].wait_for_publish(WAIT)
            if held < needed:
                return Result(feature, False, f"the broker stopped at {held:,} unacknowledged messages to one "
                                              f"subscriber; a collector needs {needed:,} (EMQX: mqtt.max_inflight)")
            return Result(feature, True, f"{held:,} messages delivered to one subscriber before it acknowledged any "
                                         f"(a collector needs {needed:,})")
        finally:
            receiver.close()
            meter.close()

    def acl_denial(self) -> Result:
        """A publish outside the rules must be refused with a reason code. A subscription outside them
        must bring nothing: EMQX refuses it (SUBACK 0x87); Mosquitto 2.0 grants it and then delivers
        only what the account may read. (Mosquitto also closes the connection after a refused publish,
        so that comes last.)"""
        feature = "topic rules (ACL)"
        other = f"meters/probe-not-{self.meter}"
        forged, foreign = f"probe-forged-{self.nonce}".encode(), f"probe-foreign-{self.nonce}".encode()
        watcher = self._link(self.a.operators[0])
        watcher.subscribe("meters/+/interval")
        meter = self._link(self.a.meter)
        company = self._link(self.a.company)
        try:
            sub = meter.subscribe("meters/+/commands")
            company.publish(f"{other}/commands", foreign)
            meter.wait(lambda: foreign in meter.payloads(), 0.5)
            pub = meter.publish(f"{other}/interval", forged)
            watcher.wait(lambda: forged in watcher.payloads(), 0.5)
            if forged in watcher.payloads() or foreign in meter.payloads():
                return Result(feature, False, "a meter could " + ("publish as another meter" if forged in
                              watcher.payloads() else "read another meter's commands") + " (ACLs off or too wide)")
            if not _refused(pub):
                return Result(feature, False, f"a publish outside the account's rules was not refused with a "
                                              f"reason code (PUBACK {_code(pub)})")
            how = f"SUBACK {_code(sub)}" if _refused(sub) else "granted, but nothing of another meter delivered"
            return Result(feature, True, f"outside its rules a meter's publish gets PUBACK {_code(pub)}; "
                                         f"its subscription: {how}")
        finally:
            for link in (watcher, meter, company):
                link.close()

    def packet_size(self) -> Result:
        feature = "packet size limit"
        topic = f"meters/{self.meter}/interval"
        watcher = self._link(self.a.operators[0])
        watcher.subscribe(topic)
        meter = self._link(self.a.meter)
        try:
            limit = meter.max_packet_size
            if limit is None:
                return Result(feature, False, "the broker announces no maximum packet size (CONNACK), so it "
                                              "takes any size")
            if limit < MAX_BATCH_BYTES + len(topic) + 16:
                return Result(feature, False, f"the limit, {limit:,} bytes, is below a concentrator's batch "
                                              f"({MAX_BATCH_BYTES:,} bytes)")
            batch = b"b" * MAX_BATCH_BYTES
            meter.publish(topic, batch)
            watcher.wait(lambda: batch in watcher.payloads(topic))
            if batch not in watcher.payloads(topic):
                return Result(feature, False, f"a batch-sized message ({MAX_BATCH_BYTES:,} bytes) did not go "
                                              "through")
            too_big = b"x" * limit
            code = meter.publish(topic, too_big)
            meter.wait(lambda: meter.closed_with is not None, 2)
            if too_big in watcher.payloads(topic) or (code is not None and not _refused(code)):
                return Result(feature, False, f"a message over the {limit:,}-byte limit was taken")
            how = f"PUBACK {_code(code)}" if code is not None else f"disconnected: {_code(meter.closed_with)}"
            return Result(feature, True, f"limit {limit:,} bytes: a batch goes through, a larger message is "
                                         f"refused ({how})")
        finally:
            watcher.close()
            meter.close()

    def takeover(self) -> Result:
        feature = "client id takeover"
        meter = self._link(self.a.meter)
        intruder = self._link(self.a.company, client_id=self.meter)
        try:
            meter.wait(lambda: meter.closed_with is not None, 1.0)
            if not meter.up:
                return Result(feature, False, "another account that sent the meter's client id pushed the meter "
                                              "off (make each client id its user name)")
            return Result(feature, True, "another account sending the meter's client id did not take over its "
                                         "session")
        finally:
            meter.close()
            intruder.close()


def run_check(accounts: Accounts) -> tuple[bool, list[Result]]:
    results = Probe(accounts).run()
    return all(r.ok for r in results) and len(results) > 1, results


def _settings(path: str, host: str | None, port: int | None) -> MqttSection:
    m = load_mqtt_config(path)
    return msgspec.structs.replace(m, host=host or m.host, port=port or m.port)


def cmd_check(args: argparse.Namespace) -> int:
    if len(args.operator) != 2:
        raise SystemExit("give --operator twice: two handler accounts for one $share group")
    s = [_settings(f, args.host, args.port) for f in (args.meter, args.company, *args.operator)]
    ok, results = run_check(Accounts(s[0], s[1], (s[2], s[3])))
    print(f"broker {s[0].host}:{s[0].port}{' (TLS)' if s[0].tls else ''}")
    for r in results:
        print(r.line())
    print("every feature the project relies on is there" if ok else "the broker lacks what is marked FAILED")
    return 0 if ok else 1


def register(sub) -> None:
    p = sub.add_parser("check", help="check that a broker (an EMQX cluster, a Mosquitto) has every feature the "
                                     "project relies on", description=__doc__.split("\n\n")[0],
                       epilog="example: smartmeter broker check --host mqtt.example.jp --port 8883 "
                              "--meter PROBE-0001.toml --company PROBE-CO.toml "
                              "--operator probe-op-1.toml --operator probe-op-2.toml")
    for name, what in (("meter", "a meter's"), ("company", "a company's")):
        p.add_argument(f"--{name}", required=True, metavar="FILE", help=f"{what} [mqtt] settings file")
    p.add_argument("--operator", action="append", required=True, metavar="FILE",
                   help="a grid operator handler's [mqtt] settings file; give two (one $share group)")
    p.add_argument("--host", help="the broker to check (default: the host in the settings files)")
    p.add_argument("--port", type=int, help="its port (default: the port in the settings files); TLS, the CA "
                                            "and certificates come from the settings files")
    p.set_defaults(func=cmd_check)
