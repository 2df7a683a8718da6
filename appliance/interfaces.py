"""The small interfaces through which drivers plug into the core (the core imports no driver)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from .domain import Sample


@dataclass(frozen=True)
class BreakerState:
    """What the breaker is doing and why, as the core, the CLI and the touch screen see it.

    ``at`` is ISO-8601 (JST) of the last change; ``contact`` is the feedback contact (None without
    one); ``fitted`` is False on a meter without a relay (the core still decides and shows what it
    would do); ``contact_fault`` is True while the contact disagrees with the command."""

    closed: bool
    reason: str = ""
    at: str | None = None
    override: bool = False
    contact: bool | None = None
    command_id: int | None = None
    fitted: bool = True
    contact_fault: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Any) -> "BreakerState | None":
        """From the stored form; None for nothing stored. Unknown keys are ignored (older stores)."""
        if not isinstance(obj, dict) or "closed" not in obj:
            return None
        known = {k: obj[k] for k in cls.__dataclass_fields__ if k in obj}
        return cls(**known)


class MeteringChip(Protocol):
    """The measurement unit (53): anything that returns one :class:`Sample` per call.

    Implementations never raise for a bus fault: they return ``Sample(ok=False, error=...)``.
    """

    def read_sample(self) -> Sample: ...

    def close(self) -> None: ...


class Breaker(Protocol):
    """The interrupting unit (57): a relay that feeds (closed) or cuts (open) the household's supply.

    ``state()`` returns a :class:`BreakerState` (``contact`` is the feedback contact, None without
    one). A command carrying a ``command_id`` at or below the last one applied is a replay and is
    ignored. While an installer's override pins the breaker, only another override or ``release``
    acts. Both return whether the command was applied.
    """

    def state(self) -> BreakerState: ...

    def command(self, closed: bool, reason: str, *, override: bool = False, command_id: int | None = None) -> bool: ...

    def release(self, reason: str, *, command_id: int | None = None) -> bool: ...

    def shutdown(self) -> None: ...
