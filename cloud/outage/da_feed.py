"""Distribution automation's simulated feed: DA events over MQTT (``grid/da/events``) into the manager.

The same events also arrive through the HTTP API (:mod:`.api`); both end in
:meth:`OutageManager.report_da`."""
from __future__ import annotations

import json
import logging

from appliance.clock import parse_iso
from appliance.config import MqttSection

from .fleet import DA_TOPIC
from .manager import OutageManager
from .model import Area, DaEvent
from .regions import OutsideRegion
from ..mqtt import disconnect, make_client, start_subscriber

log = logging.getLogger(__name__)


def parse_da(obj: dict) -> DaEvent:
    try:
        return DaEvent(Area.from_key(obj["area"]), obj["kind"], parse_iso(obj["at"]), str(obj.get("reference", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad DA event: {exc}") from None


class DaFeed:
    def __init__(self, manager: OutageManager) -> None:
        self.manager = manager
        self.received = 0
        self.rejected = 0
        self._client = None

    def handle(self, payload: bytes) -> None:
        try:
            self.manager.report_da(parse_da(json.loads(payload.decode("utf-8"))))
        except OutsideRegion as exc:  # the feed carries every region's events: another manager takes it
            log.debug("%s", exc)
        except (ValueError, UnicodeDecodeError) as exc:
            self.rejected += 1
            log.warning("dropped DA event: %s", exc)
        finally:
            self.received += 1

    def start(self, broker: MqttSection) -> None:
        client = make_client(broker)
        client.on_message = lambda c, u, msg: self.handle(msg.payload)
        start_subscriber(client, broker, [(DA_TOPIC, 1)])
        self._client = client

    def stop(self) -> None:
        if self._client:
            disconnect(self._client)
            self._client = None
