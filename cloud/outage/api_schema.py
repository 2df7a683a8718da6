"""The bodies the manager's HTTP API accepts, declared once (msgspec, like the wire contract).

Every string has a length limit and no control characters (an e-mail address or a name ends up in a
mail header or body), every time has a UTC offset and lies in a plausible range, and a body is
refused before parsing when it is larger than :data:`MAX_BODY_BYTES`. :func:`decode_body` turns any
breach into :class:`BodyError` naming the field, which the API answers with 400.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Literal, TypeVar

import msgspec

from appliance.wire import MeterId, WireError, decode

MAX_BODY_BYTES = 4 * 1024 * 1024  # 10,000 registrations of ~300 bytes, with room to spare
MAX_REGISTRATIONS = 10_000
MAX_OUTAGE_ID = 2**63 - 1
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)  # times outside these are nobody's outage
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)

_LINE = r"[^\x00-\x1f\x7f]"  # one line of text: no control characters
_AREA_PART = r"[^/\x00-\x1f\x7f]{1,64}"


def _text(max_length: int, *, min_length: int = 0) -> msgspec.Meta:
    return msgspec.Meta(min_length=min_length, max_length=max_length, pattern=f"^{_LINE}*$")


Line = Annotated[str, _text(200)]
Name = Annotated[str, _text(128)]  # as the contract cards allow
Code = Annotated[str, _text(64, min_length=1)]
Detail = Annotated[str, msgspec.Meta(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$")]
AreaKey = Annotated[str, msgspec.Meta(pattern=f"^{_AREA_PART}/{_AREA_PART}/{_AREA_PART}$")]  # prefecture/city/district
# An address fit for a To: header (no spaces, quotes or line breaks); "" means none.
Email = Annotated[str, msgspec.Meta(max_length=254, pattern=r'^([^@\s<>(),;:"\\\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,189})?$')]
Time = Annotated[datetime, msgspec.Meta(tz=True)]


class _Timed(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A body whose times must be plausible (checked after the types)."""

    def __post_init__(self) -> None:
        for field in self.__struct_fields__:
            value = getattr(self, field)
            if isinstance(value, datetime) and not EARLIEST <= value < LATEST:
                raise ValueError(f"{field}: {value.isoformat()} is not between {EARLIEST.year} and {LATEST.year}")


class DaBody(_Timed, frozen=True):
    """``POST /da``: distribution automation's word on an area."""

    area: AreaKey
    kind: Literal["outage", "restored"]
    at: Time
    reference: Line = ""


class OperatorBody(_Timed, frozen=True):
    """``POST /outages/{id}``: the operator's form. ``expected_restoration: null`` clears it; absent keeps it."""

    response_status: Code | None = None
    reason: Code | None = None
    expected_restoration: Time | None | msgspec.UnsetType = msgspec.UNSET


class PlannedBody(_Timed, frozen=True):
    """``POST /planned``: a planned outage of an area."""

    area: AreaKey
    start: Time
    end: Time
    reason: Code = "construction"


class RegistrationBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One customer of ``POST /registrations`` (Table 1)."""

    meter_id: MeterId
    customer_number: Code
    area: AreaKey
    concentrator_id: Code
    email: Email | None = None
    name: Name = ""
    language: Literal["ja", "en"] = "ja"
    unsubscribed: bool = False
    substation: Name = ""  # 配電系統 (Fig. 10): optional, the utility's records
    feeder: Name = ""
    section: Name = ""


Registrations = Annotated[list[RegistrationBody], msgspec.Meta(max_length=MAX_REGISTRATIONS)]


class SecurityErrorBody(_Timed, frozen=True):
    """``POST /security_errors``: a meter's security error, for its customer."""

    meter_id: MeterId
    at: Time
    detail: Detail = ""
    reference: Line = ""


class BodyError(ValueError):
    """A request the API refuses with 400; ``field`` names the offending part (``$.area``, ``$[3].email``)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


T = TypeVar("T")
_AT = re.compile(r" - at `([^`]*)`$")


def decode_body(raw: bytes, kind: type[T]) -> T:
    """``raw`` as ``kind``, or :class:`BodyError` (field ``$``: the body as a whole, or one of its
    times: the message names it)."""
    try:
        return decode(raw, kind, max_bytes=MAX_BODY_BYTES)
    except WireError as exc:
        found = _AT.search(exc.detail)
        message = exc.detail[:found.start()] if found else (exc.detail if exc.reason == "invalid" else str(exc))
        raise BodyError(message or exc.reason, found.group(1) if found else "$") from None


def outage_id(text: str) -> int:
    """The ``{id}`` of ``/outages/{id}``: a positive integer the database can hold."""
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and 1 <= int(text) <= MAX_OUTAGE_ID):
        raise BodyError(f"outage id {text[:40]!r} is not an integer from 1 to {MAX_OUTAGE_ID}", "id")
    return int(text)


def meter_id(text: str) -> str:
    """The ``{id}`` of ``/meters/{id}`` or the ``meter_id`` of a link, as the wire contract allows."""
    try:
        return msgspec.convert(text, MeterId)
    except msgspec.ValidationError:
        raise BodyError(f"meter id {text[:40]!r} is not 1-64 letters, digits, '-' or '_'", "meter_id") from None
