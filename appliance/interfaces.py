"""The small interfaces through which drivers plug into the core (the core imports no driver)."""
from __future__ import annotations

from typing import Protocol

from .domain import Sample


class MeteringChip(Protocol):
    """The measurement unit (53): anything that returns one :class:`Sample` per call.

    Implementations never raise for a bus fault: they return ``Sample(ok=False, error=...)``.
    """

    def read_sample(self) -> Sample: ...

    def close(self) -> None: ...


class Breaker(Protocol):
    """The interrupting unit (57): a relay that feeds (closed) or cuts (open) the household's supply.

    ``state()`` returns ``{"closed": bool, "reason": str, "at": iso, "override": bool,
    "contact": bool | None, "command_id": int | None}``; ``contact`` is the feedback contact (None
    without one). A command carrying a ``command_id`` at or below the last one applied is a replay
    and is ignored. While an installer's override pins the breaker, only another override or
    ``release`` acts. Both return whether the command was applied.
    """

    def state(self) -> dict: ...

    def command(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool: ...

    def release(self, reason: str, *, command_id: int | None = None) -> bool: ...

    def shutdown(self) -> None: ...
