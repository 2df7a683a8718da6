"""Typed domain objects of the outage pipeline (JP6794864B2 Tables 1-5).

Times are timezone-aware datetimes in memory; storage keeps epoch seconds, people see JST.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Any


class Language(str, Enum):
    JA = "ja"
    EN = "en"


@dataclass(frozen=True)
class Area:
    """停電地域: prefecture / city / district, as in Table 3 and Fig. 12."""

    prefecture: str
    city: str
    district: str

    @property
    def key(self) -> str:
        return f"{self.prefecture}/{self.city}/{self.district}"

    @classmethod
    @lru_cache(maxsize=1 << 16)  # an area is read once per outage each time the open ones are loaded
    def from_key(cls, key: str) -> "Area":
        parts = key.split("/")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"area {key!r} is not prefecture/city/district")
        return cls(*parts)

    def label(self, sep: str = " ") -> str:
        return sep.join((self.prefecture, self.city, self.district))


@dataclass(frozen=True)
class Registration:
    """Table 1: one customer's registration, plus the topology the manager needs."""

    meter_id: str
    customer_number: str
    area: Area
    concentrator_id: str
    email: str | None = None  # the patent allows records without an address: no e-mail then
    name: str = ""
    language: Language = Language.JA
    unsubscribed: bool = False
    commissioned_at: datetime | None = None  # the meter's times before this are refused (None: not known)
    street: str = ""  # 番地・建物: the rest of the address below the district, as the customer typed it
    postal_code: str = ""  # seven digits, as registered on the public site
    pending_email: str | None = None  # an address given on the public site, waiting for its confirmation link
    email_confirmed_at: datetime | None = None  # when the customer confirmed ``email`` (None: from the records)
    # 配電系統 (Fig. 10's distribution system): the utility's records; "" where they do not say
    substation: str = ""  # 変電所
    feeder: str = ""  # 配電線 (フィーダ) leaving that substation
    section: str = ""  # 区間: the stretch of the feeder between two switches

    @property
    def reachable(self) -> bool:
        """Outage e-mail may go to ``email``. It only ever holds a confirmed address (double opt-in: one
        given on the public site waits in ``pending_email``) or one from the utility's own records."""
        return bool(self.email) and not self.unsubscribed


@dataclass(frozen=True)
class Reading:
    """One interval reading as received (interfaces.md section 2)."""

    meter_id: str
    seq: int
    interval_start: datetime
    interval_end: datetime
    payload: dict[str, Any] | str  # the JSON object, or its text as received


class MeterState(str, Enum):
    ONLINE = "online"
    OFFLINE = "offline"  # the Last Will
    POWER_FAIL = "power_fail"  # the last gasp
    POWER_RESTORED = "power_restored"

    @property
    def is_down(self) -> bool:
        return self in (MeterState.OFFLINE, MeterState.POWER_FAIL)


@dataclass(frozen=True)
class StatusEvent:
    meter_id: str
    state: MeterState
    at: datetime  # the meter's own time stamp


@dataclass(frozen=True)
class MeterAlertEvent:
    """A meter's alert for its customer (a security error): e-mailed to the registered address."""

    meter_id: str
    alert_id: int
    kind: str
    at: datetime
    company_code: str
    role: str  # supply | data
    breaker_open: bool


@dataclass(frozen=True)
class MeterComm:
    """What the collector knows of one meter: the evidence the manager judges."""

    meter_id: str
    last_interval_end: datetime | None  # the newest window received
    reading_rx_at: datetime | None  # when (collector clock) a reading last arrived
    status: MeterState | None
    status_at: datetime | None  # the meter's time stamp of that status
    status_rx_at: datetime | None


class OutageKind(str, Enum):
    AREA = "area"  # Fig. 11(a)
    INDOOR = "indoor"  # Fig. 11(b): one home in an area of several
    COMM_FAULT = "comm_fault"  # a concentrator silent: not an outage, never e-mailed
    PLANNED = "planned"  # 工事停電


class OutageStatus(str, Enum):
    SUSPECTED = "suspected"  # evidence seen, declaration delay running
    DECLARED = "declared"
    RESTORING = "restoring"  # some meters back, or distribution automation reports restoration
    RESTORED = "restored"
    CANCELLED = "cancelled"  # gone before declaration: a blink
    PLANNED = "planned"  # a planned outage, announced, not yet over

    @property
    def is_open(self) -> bool:
        return self in (OutageStatus.SUSPECTED, OutageStatus.DECLARED, OutageStatus.RESTORING, OutageStatus.PLANNED)


@dataclass
class Outage:
    """One outage: the per-area record behind Tables 3-5 and every e-mail."""

    id: int | None
    kind: OutageKind
    status: OutageStatus
    area: Area
    started_at: datetime  # 停電日時
    detected_at: datetime
    declared_at: datetime | None = None
    restored_at: datetime | None = None  # 復旧日時
    expected_restoration: datetime | None = None  # 復旧予定日時
    response_status: str = "investigating"  # 対応状況 (code or operator's free text)
    reason: str = "investigating"  # 停電理由 (code or operator's free text)
    peak_count: int = 0  # 停電戸数: the (maximum, momentary) count, Fig. 12's note
    current_count: int = 0
    planned_end: datetime | None = None
    source: str = "meters"  # meters | distribution_automation | operator
    concentrator_id: str | None = None  # the silent concentrator of a communication fault
    revision: int = 0  # bumped on each meaningful change of expected restoration
    updated_at: datetime | None = None


@dataclass(frozen=True)
class OutageMember:
    outage_id: int
    meter_id: str
    down_at: datetime
    restored_at: datetime | None = None


class Event(str, Enum):
    """Why a customer gets an e-mail."""

    DECLARED = "declared"
    RESTORATION_CHANGED = "restoration_changed"
    RESTORED = "restored"
    PLANNED_NOTICE = "planned_notice"
    SECURITY_ERROR = "security_error"


# Quiet hours hold back everything but these.
URGENT_EVENTS = frozenset({Event.DECLARED, Event.SECURITY_ERROR})


class NotificationState(str, Enum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by one notifier process
    SENT = "sent"
    RETRY = "retry"  # SMTP failed; waits in the retry queue
    FAILED = "failed"  # gave up after the last retry
    SUPERSEDED = "superseded"  # a newer update for the same customer and outage replaced it
    SKIPPED = "skipped"  # the customer unsubscribed before it went out


@dataclass(frozen=True)
class Notification:
    id: int
    key: str  # unique: one e-mail per customer per event
    event: Event
    meter_id: str
    outage_id: int | None
    attempts: int
    not_before: datetime
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DaEvent:
    """Distribution automation (配電自動化システム 21): an outage start or restoration in an area."""

    area: Area
    kind: str  # "outage" | "restored"
    at: datetime
    reference: str = ""  # the DA system's own id of the event, for the log
