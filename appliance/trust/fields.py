"""Strict readers for the fields of decoded payloads: type, pattern and size, with the field named."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from appliance.clock import parse_iso

from .rejections import MalformedDocument

METER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
COMPANY_CODE = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_TEXT = 128  # names, server addresses, menu codes: a card has no room for more anyway
MAX_SERIAL = 2**63 - 1


def as_map(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise MalformedDocument(f"the {what} is not a map with text keys")
    return value


def text(m: dict[str, Any], key: str, *, pattern: re.Pattern[str] | None = None, optional: bool = False,
         max_len: int = MAX_TEXT) -> str | None:
    value = m.get(key)
    if value is None:
        if optional:
            return None
        raise MalformedDocument(f"field {key!r} is missing")
    if not isinstance(value, str):
        raise MalformedDocument(f"field {key!r} must be text, not {type(value).__name__}")
    if len(value) > max_len:
        raise MalformedDocument(f"field {key!r} is {len(value)} characters, more than {max_len}")
    if pattern is not None and not pattern.fullmatch(value):
        raise MalformedDocument(f"field {key!r} has an invalid value {value!r}")
    return value


def required_text(m: dict[str, Any], key: str, **kw: Any) -> str:
    value = text(m, key, **kw)
    assert value is not None
    return value


def integer(m: dict[str, Any], key: str, *, low: int = 0, high: int = MAX_SERIAL, optional: bool = False) -> int | None:
    value = m.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedDocument(f"field {key!r} must be a whole number")
    if not low <= value <= high:
        raise MalformedDocument(f"field {key!r} = {value} is outside {low}..{high}")
    return value


def timestamp(m: dict[str, Any], key: str) -> datetime:
    return parse_time(required_text(m, key, max_len=40), key)


def parse_time(value: str, key: str) -> datetime:
    try:
        return parse_iso(value)
    except ValueError:
        raise MalformedDocument(f"field {key!r} is not an ISO-8601 date-time with offset: {value!r}") from None
