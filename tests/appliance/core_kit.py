"""The meter core without hardware or broker: a chip whose registers advance by a fixed power, an
uplink that acknowledges every publish at once and keeps it, and a small registry (PKI)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from appliance.clock import JST, ManualClock
from appliance.domain import Role, Sample
from appliance.config import parse_config
from appliance.service import MeterService
from appliance.trust import keys
from appliance.trust.certificate import CertifiedRole, issue_certificate
from appliance.uplink import LinkState
from smartmeter.assembly import build_meter

METER = "MTR-K1"
START = datetime(2026, 11, 23, 0, 0, tzinfo=JST)


class SteadyChip:
    """Import at ``power_w`` (set it to change the load): the register grows by power x time on the clock."""

    def __init__(self, clock: ManualClock, power_w: float = 600.0) -> None:
        self.clock, self.power_w = clock, power_w
        self._at, self._wh = clock.now(), 1000.0

    def set_power(self, watts: float) -> None:
        self.read_sample()  # the register up to now at the old power
        self.power_w = watts

    def read_sample(self) -> Sample:
        now = self.clock.now()
        self._wh += self.power_w * (now - self._at).total_seconds() / 3600
        self._at = now
        return Sample(at=now, ok=True, voltage_v=100.0, current_a=self.power_w / 100, power_w=self.power_w,
                      import_wh_total=round(self._wh, 3), export_wh_total=0.0, frequency_hz=50.0, power_factor=1.0)

    def close(self) -> None:
        pass


@dataclass
class KeptUplink:
    """Acknowledges every publish at once; ``sent`` keeps (topic, body) in order."""

    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    on_command: Callable[[bytes], None] | None = None

    def publish(self, topic: str, payload: bytes, on_ack: Callable[[], None], on_lost=None) -> bool:
        self.sent.append((topic, json.loads(payload)))
        on_ack()
        return True

    def state(self) -> LinkState:
        return LinkState(True)

    def on(self, topic_end: str) -> list[dict[str, Any]]:
        """What a receiver keeps of a topic: deduplicated on ``seq`` (a restart may resend a row whose
        acknowledgement it had not recorded yet), in order."""
        kept: dict[Any, dict[str, Any]] = {}
        for topic, body in self.sent:
            if topic.endswith(topic_end):
                kept.setdefault(body.get("seq", len(kept)), body)
        return list(kept.values())


@dataclass
class Party:
    code: str
    key: Any
    cert: bytes


@dataclass
class Registry:
    root: Any = field(default_factory=keys.generate)

    @property
    def public(self) -> bytes:
        return keys.public_raw(self.root)

    def certify(self, code: str, role: CertifiedRole) -> Party:
        key = keys.generate()
        cert = issue_certificate(self.root, company_code=code, name=f"{code}社", role=role, public_key=key.public_key(),
                                 not_before=START - timedelta(days=30), not_after=START + timedelta(days=365))
        return Party(code, key, cert)


def core(tmp_path, clock: ManualClock, *, interval: timedelta = timedelta(minutes=30),
         root_public_key: bytes | None = None, breaker=None, chip: SteadyChip | None = None,
         uplink: KeptUplink | None = None) -> tuple[MeterService, KeptUplink]:
    """A meter service on ``tmp_path``'s store (the same store again: a restart), assembled as every
    meter is (smartmeter.assembly) around this kit's chip and uplink."""
    uplink = uplink or KeptUplink()
    raw: dict[str, Any] = {
        "meter": {"id": METER, "measurement_interval": f"{interval.total_seconds():g}s",
                  "store": str(tmp_path / "meter.sqlite3")},
        "chip": {"profile": "sdm120", "tcp": "127.0.0.1:1"}}  # never dialled: the kit's chip is handed in
    if root_public_key is not None:
        (tmp_path / "registry.pub").write_bytes(root_public_key)
        raw["trust"] = {"registry_public_key": str(tmp_path / "registry.pub")}
    meter = build_meter(parse_config(raw, base=tmp_path), clock, chip=chip or SteadyChip(clock), uplink=uplink,
                        breaker=breaker, commission=False)
    return meter.service, uplink


__all__ = ["METER", "START", "Role", "core", "Registry", "Party", "KeptUplink", "SteadyChip"]
