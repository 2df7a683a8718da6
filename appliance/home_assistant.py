"""Home Assistant MQTT discovery: the household's own Home Assistant sees the meter's power, import
and export energy (ready for its energy dashboard) and the breaker, on the household's broker.

Only the household's broker is ever used (the config refuses the utility's). Discovery configs are
retained under ``{prefix}/{component}/{node}/{object}/config``; one JSON state per reading goes to
``smartmeter/{node}/state`` (retained, so a restarted Home Assistant shows the last values at once),
and ``smartmeter/{node}/availability`` says ``online`` / ``offline`` (the Last Will). Power is the
interval's mean; the energies are the chip's cumulative registers in kWh (``total_increasing``: a
register reset starts a new cycle in Home Assistant's statistics).
"""
from __future__ import annotations

import json
import logging
import re
from typing import Any, Callable

import paho.mqtt.client as mqtt

from .config import HomeAssistantSection
from .domain import Reading
from .interfaces import BreakerState
from .mqtt_settings import apply_settings

log = logging.getLogger(__name__)

MANUFACTURER = "smartmeter"
MODEL = "Switchable smart meter (JP5159864B2)"


def node_id(meter_id: str) -> str:
    """Home Assistant's node and object ids allow ``[a-zA-Z0-9_-]`` only."""
    return "smartmeter_" + re.sub(r"[^A-Za-z0-9_-]", "_", meter_id)


class Topics:
    def __init__(self, prefix: str, meter_id: str) -> None:
        self.prefix, self.node = prefix, node_id(meter_id)
        self.state = f"smartmeter/{self.node}/state"
        self.availability = f"smartmeter/{self.node}/availability"

    def config(self, component: str, obj: str) -> str:
        return f"{self.prefix}/{component}/{self.node}/{obj}/config"


def discovery_configs(meter_id: str, name: str, prefix: str = "homeassistant",
                      sw_version: str = "") -> dict[str, dict[str, Any]]:
    """Discovery topic -> config payload, for each entity of the meter."""
    t = Topics(prefix, meter_id)
    device = {"identifiers": [t.node], "name": name, "manufacturer": MANUFACTURER, "model": MODEL,
              "serial_number": meter_id, **({"sw_version": sw_version} if sw_version else {})}

    def entity(obj: str, label: str, template: str, **extra: Any) -> dict[str, Any]:
        return {"name": label, "unique_id": f"{t.node}_{obj}", "object_id": f"{t.node}_{obj}",
                "state_topic": t.state, "value_template": template, "availability_topic": t.availability,
                "payload_available": "online", "payload_not_available": "offline", "device": device, **extra}

    return {
        t.config("sensor", "power"): entity("power", "電力", "{{ value_json.power_w }}", device_class="power",
                                            unit_of_measurement="W", state_class="measurement"),
        t.config("sensor", "import_energy"): entity(
            "import_energy", "買電量", "{{ value_json.import_kwh }}", device_class="energy",
            unit_of_measurement="kWh", state_class="total_increasing"),
        t.config("sensor", "export_energy"): entity(
            "export_energy", "売電量", "{{ value_json.export_kwh }}", device_class="energy",
            unit_of_measurement="kWh", state_class="total_increasing"),
        t.config("binary_sensor", "breaker"): entity(
            "breaker", "ブレーカー", "{{ 'ON' if value_json.breaker_closed else 'OFF' }}", device_class="power",
            payload_on="ON", payload_off="OFF"),
    }


def state_payload(reading: Reading | None, breaker: BreakerState | None) -> dict[str, Any]:
    """The state every entity reads its value from (None where the meter has nothing to say)."""
    def kwh(wh: float | None) -> float | None:
        return None if wh is None else round(wh / 1000, 3)

    good = reading is not None and reading.quality == "good"
    return {"power_w": reading.power_w if good else None,
            "import_kwh": kwh(reading.import_wh_total) if good else None,
            "export_kwh": kwh(reading.export_wh_total) if good else None,
            "breaker_closed": None if breaker is None else breaker.closed}


class HomeAssistantBridge:
    """Publishes discovery at each connection (Home Assistant may have restarted) and a state per reading."""

    def __init__(self, settings: HomeAssistantSection, meter_id: str,
                 breaker_state: Callable[[], BreakerState | None] = lambda: None) -> None:
        assert settings.mqtt is not None  # the config requires it when enabled
        self.settings = settings
        self.meter_id = meter_id
        self.topics = Topics(settings.discovery_prefix, meter_id)
        self.breaker_state = breaker_state
        self._state = state_payload(None, None)  # made on the service's thread, sent from any
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{self.topics.node}-ha",
                                  protocol=mqtt.MQTTv5)
        apply_settings(self.client, settings.mqtt)
        self.client.will_set(self.topics.availability, "offline", qos=1, retain=True)
        self.client.reconnect_delay_set(min_delay=1, max_delay=60)
        self.client.on_connect = self._on_connect

    def start(self) -> "HomeAssistantBridge":
        m = self.settings.mqtt
        self.client.connect_async(m.host, m.port, keepalive=m.keepalive)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.publish(self.topics.availability, "offline", qos=1, retain=True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()

    def on_reading(self, reading: Reading) -> None:
        """After each stored reading (the service's thread)."""
        self._state = state_payload(reading, self.breaker_state())
        self._publish_state()

    def _publish_state(self) -> None:
        self.client.publish(self.topics.state, json.dumps(self._state), qos=1, retain=True)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("Home Assistant broker %s refused the connection: %s", self.settings.mqtt.host, reason_code)
            return
        for topic, config in discovery_configs(self.meter_id, self.settings.name,
                                               self.settings.discovery_prefix).items():
            client.publish(topic, json.dumps(config, ensure_ascii=False), qos=1, retain=True)
        client.publish(self.topics.availability, "online", qos=1, retain=True)
        self._publish_state()
        log.info("Home Assistant discovery published on %s:%s", self.settings.mqtt.host, self.settings.mqtt.port)
