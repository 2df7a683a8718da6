"""Home Assistant MQTT discovery: the payloads against Home Assistant's MQTT discovery schema (as its
documentation states it for sensors and binary sensors, and the energy dashboard's rules), published
to a real household broker and read back retained; the utility's broker is refused."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta
from typing import Literal

import msgspec
import pytest

from appliance.clock import JST
from appliance.config import HomeAssistantSection, MqttSection, parse_config
from appliance.domain import Reading
from appliance.errors import ConfigError
from appliance.home_assistant import HomeAssistantBridge, discovery_configs
from appliance.interfaces import BreakerState
from devkit.mosquitto import LocalMosquitto
from polling import wait_for

# -- Home Assistant's MQTT discovery schema, the part these entities use -------------------------------
# (home-assistant.io/integrations/sensor.mqtt, binary_sensor.mqtt, /integrations/sensor#device-class,
# /docs/energy/faq: an energy sensor needs device_class energy, state_class total or total_increasing and
# a unit of energy; a power sensor is a measurement in a unit of power)


class Device(msgspec.Struct, forbid_unknown_fields=True):
    identifiers: list[str]
    name: str
    manufacturer: str | None = None
    model: str | None = None
    serial_number: str | None = None
    sw_version: str | None = None


class Common(msgspec.Struct, forbid_unknown_fields=True):
    state_topic: str  # required
    name: str | None = None
    unique_id: str | None = None
    object_id: str | None = None
    value_template: str | None = None
    availability_topic: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"
    device: Device | None = None


class Sensor(Common, forbid_unknown_fields=True):
    device_class: Literal["power", "energy", "voltage", "current"] | None = None
    unit_of_measurement: str | None = None
    state_class: Literal["measurement", "total", "total_increasing"] | None = None


class BinarySensor(Common, forbid_unknown_fields=True):
    device_class: Literal["power", "plug", "problem", "running"] | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"


UNITS = {"power": {"W", "kW"}, "energy": {"Wh", "kWh", "MWh", "GJ"}}
STATE_CLASSES = {"power": {"measurement"}, "energy": {"total", "total_increasing"}}
TOPIC = re.compile(r"^[A-Za-z0-9_-]+/(sensor|binary_sensor)/([a-zA-Z0-9_-]+)/([a-zA-Z0-9_-]+)/config$")


def check(topic: str, payload: bytes) -> Sensor | BinarySensor:
    m = TOPIC.match(topic)  # <discovery_prefix>/<component>/<node_id>/<object_id>/config
    assert m, topic
    entity = msgspec.json.decode(payload, type=Sensor if m.group(1) == "sensor" else BinarySensor)
    if isinstance(entity, Sensor) and entity.device_class in UNITS:
        assert entity.unit_of_measurement in UNITS[entity.device_class], (topic, entity.unit_of_measurement)
        assert entity.state_class in STATE_CLASSES[entity.device_class], (topic, entity.state_class)
    assert entity.unique_id and entity.device and entity.device.identifiers
    return entity


def test_the_discovery_payloads_follow_home_assistants_schema_and_suit_the_energy_dashboard():
    configs = discovery_configs("MTR-0001", "スマートメーター")
    entities = {t: check(t, json.dumps(c).encode()) for t, c in configs.items()}
    energy = [e for e in entities.values() if isinstance(e, Sensor) and e.device_class == "energy"]
    assert len(energy) == 2 and all(e.state_class == "total_increasing" for e in energy)
    assert any(isinstance(e, BinarySensor) for e in entities.values())  # the breaker
    assert len({e.unique_id for e in entities.values()}) == len(entities)
    with pytest.raises(msgspec.ValidationError):  # the schema can fail: a power sensor without its state topic
        msgspec.json.decode(b'{"device_class": "power"}', type=Sensor)
    with pytest.raises(AssertionError):  # and an energy sensor Home Assistant's dashboard would not offer
        check("homeassistant/sensor/n/o/config", json.dumps({**configs[next(iter(configs))], "device_class": "energy",
                                                              "unit_of_measurement": "W"}).encode())


def test_the_utilitys_broker_is_refused_for_home_assistant():
    with pytest.raises(ConfigError, match="utility's broker"):
        parse_config({"meter": {"id": "M"}, "mqtt": {"host": "localhost", "port": 1883},
                      "home_assistant": {"enabled": True, "mqtt": {"host": "127.0.0.1", "port": 1883}}})


class Reader:
    """A client of the household broker (Home Assistant's account) holding the last message of each topic."""

    def __init__(self, house):
        import paho.mqtt.client as mqtt

        self.got: dict[str, bytes] = {}
        self.retained: set[str] = set()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("ha", "pw2")
        self.client.on_message = self._on_message
        self.client.connect(house.host, house.port)
        self.client.subscribe([("homeassistant/#", 1), ("smartmeter/#", 1)])
        self.client.loop_start()
        wait_for(self.client.is_connected, what="reader connected")

    def _on_message(self, _c, _u, msg):
        self.got[msg.topic] = msg.payload
        if msg.retain:
            self.retained.add(msg.topic)

    def wait_for(self, topics, retained=False):
        wait_for(lambda: topics <= (self.retained if retained else set(self.got)), what=f"{sorted(topics)}")
        self.close()
        return self.got

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_discovery_and_state_are_on_the_household_broker_retained(tmp_path):
    with LocalMosquitto(workdir=tmp_path / "household", users={"meter": "pw", "ha": "pw2"}) as house:
        settings = HomeAssistantSection(enabled=True, mqtt=MqttSection(house.host, house.port, "meter", "pw"))
        bridge = HomeAssistantBridge(settings, "MTR-0001", lambda: BreakerState(closed=True))
        start = datetime(2026, 11, 23, 0, 0, tzinfo=JST)
        bridge.on_reading(Reading("MTR-0001", 1, start, start + timedelta(minutes=30), power_w=420.0,
                                  import_wh_total=12345.6, export_wh_total=789.0))  # sent once connected
        live = Reader(house)
        bridge.start()
        configs = discovery_configs("MTR-0001", settings.name)
        want = set(configs) | {"smartmeter/smartmeter_MTR-0001/state", "smartmeter/smartmeter_MTR-0001/availability"}
        try:
            wait_for(lambda: want <= set(live.got), what="discovery on the household broker")
            got = Reader(house).wait_for(want, retained=True)  # a Home Assistant started afterwards
            for topic in configs:
                check(topic, got[topic])
            state = json.loads(got["smartmeter/smartmeter_MTR-0001/state"])
            assert state == {"power_w": 420.0, "import_kwh": 12.346, "export_kwh": 0.789, "breaker_closed": True}
            assert got["smartmeter/smartmeter_MTR-0001/availability"] == b"online"
        finally:
            live.close()
            bridge.stop()
