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
