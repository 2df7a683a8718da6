"""The last gasp from a real meter: the supply monitor's GPIO (gpiozero's mock pins) cut and restored
under the meter service assembled from its config, against the real broker. The service is not
stepped: the status must not wait for the step cadence."""
from __future__ import annotations

import json
import threading

from polling import wait_for

from appliance.clock import JST
from appliance.domain import Sample
from appliance.supply import GPIO, VOLTAGE, SupplySettings, SupplyWatch, journal
from appliance.store import Store
from cloud.mqtt import connect, disconnect, make_client
from meter_rig import METER, Rig

HOLDUP_MS = 2000
SUPPLY = {"pin": 22, "pull_up": True, "pin_factory": "mock", "holdup_ms": HOLDUP_MS}


class StatusWatcher:
    """The grid operator's view of the meter's status topic."""

    def __init__(self, broker):
        self.states: list[str] = []
        self.seen = threading.Event()
        account = broker.account("operator", "gasp-watch")
        self.client = make_client(account)
        self.client.on_message = self._on_message
        connect(self.client, account)
        self.client.subscribe(f"meters/{METER}/status", qos=1)

    def _on_message(self, _c, _u, msg):
        self.states.append(json.loads(msg.payload)["state"])
        self.seen.set()

    def wait(self, state: str, seconds: float) -> None:
        wait_for(lambda: state in self.states, timeout=seconds, what=f"{state} on the broker")


def test_a_supply_cut_on_the_configured_gpio_sends_power_fail_then_power_restored(tmp_path, broker, clock):
    rig = Rig(tmp_path, broker, clock, companies=(), service_options={"supply": SUPPLY})
    watcher = StatusWatcher(broker)
    try:
        wait_for(lambda: "online" in watcher.states, what="online")
        pin = rig.meter.supply_monitor.device.pin  # the configured GPIO, on the mock pin factory
        assert pin.info.name == "GPIO22" and pin.state  # an open-drain comparator, pulled up: supply good
        pin.drive_low()  # the supply monitor says the supply has gone
        watcher.wait("power_fail", HOLDUP_MS / 1000)
        pin.drive_high()
        watcher.wait("power_restored", HOLDUP_MS / 1000)
        assert watcher.states[-2:] == ["power_fail", "power_restored"]
        assert [(e["on"], e["published"]) for e in journal(rig.store)] == [(True, False), (False, True), (True, True)]
    finally:
        disconnect(watcher.client)
        rig.close()


class FakeLink:
    def __init__(self):
        self.sent: list[str] = []

    def publish_status(self, state, on_ack=None):
        self.sent.append(state)
        if on_ack:
            on_ack()


def _sample(clock, volts, ok=True):
    return Sample(clock.now(), ok, voltage_v=volts if ok else None)


def test_the_chip_voltage_is_a_second_signal_and_either_signal_holds_the_supply_lost(tmp_path, clock):
    store, link = Store(tmp_path / "m.sqlite3"), FakeLink()
    watch = SupplyWatch(SupplySettings(voltage_threshold=80.0), store, link, clock)
    watch.report(GPIO, True)
    watch.observe(_sample(clock, 101.0))
    watch.observe(_sample(clock, 0.0, ok=False))  # a silent chip is not a cut (a loose cable looks the same)
    assert link.sent == []
    watch.observe(_sample(clock, 12.0))  # collapsed
    watch.report(GPIO, False)  # the GPIO agrees: no second message
    watch.report(GPIO, True)  # the GPIO is back, the voltage not yet: still lost
    watch.observe(_sample(clock, 82.0))  # above the threshold, within the restore margin: still lost
    assert link.sent == ["power_fail"]
    watch.observe(_sample(clock, 100.0))
    assert link.sent == ["power_fail", "power_restored"]
    assert [e["signal"] for e in journal(store)] == [GPIO, VOLTAGE, VOLTAGE]
    store.close()


def test_the_power_good_level_and_the_pull_are_each_configurable():
    from gpiozero.pins.mock import MockFactory

    from drivers.supply import GpioSupplyMonitor

    for active_high, pull_up, cut in ((True, False, "drive_low"), (True, True, "drive_low"),
                                      (False, True, "drive_high"), (False, False, "drive_high")):
        f = MockFactory()
        seen: list[bool] = []
        m = GpioSupplyMonitor(5, active_high=active_high, pull_up=pull_up, pin_factory=f)
        pin = f.pin(5)
        getattr(pin, "drive_high" if active_high else "drive_low")()  # the supply is good
        m.start(seen.append)
        getattr(pin, cut)()
        assert seen == [True, False], (active_high, pull_up, seen)
        m.close()
