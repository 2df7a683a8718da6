"""What a card slot tells the core: a document was read, a read failed, the card was taken out.

Every reader (PC/SC or NFC, in ``drivers.cards``) reports through :class:`CardCallbacks`, the small
interface card readers plug into. ``on_document`` receives the
signed document bytes only after the whole card was read; the core then verifies it
(:func:`appliance.trust.verify_document`) exactly as it does a remote change.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from .errors import MeterError
from .trust.rejections import DocumentRejected

log = logging.getLogger(__name__)


class CardReadError(MeterError):
    """The card could not be read to the end (pulled out, not answering). Nothing from it is delivered."""

    code = "read_failed"
    reason_ja = "カードを読み取れませんでした。もう一度差し込んでください"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


CardProblem = CardReadError | DocumentRejected  # both carry .reason, .code and .reason_ja


@dataclass(frozen=True)
class ReadStats:
    """How one read went, for the log and the benchmark (APDU time vs. detection-to-delivery time)."""

    exchanges: int = 0  # APDUs (PC/SC) or tag commands (NFC)
    exchange_seconds: float = 0.0  # time spent inside those exchanges
    total_seconds: float = 0.0  # from seeing the card to having the whole message


def _ignore(*_args: object) -> None:
    return None


@dataclass
class CardCallbacks:
    """The core's hooks; each is called from a reader thread, in order per slot."""

    on_document: Callable[[str, bytes], None]
    on_error: Callable[[str, CardProblem], None] = _ignore
    on_removed: Callable[[str], None] = _ignore
    on_inserted: Callable[[str], None] = _ignore
    on_stats: Callable[[str, ReadStats], None] = field(default=_ignore)

    def safely(self, name: str, *args: object) -> None:
        """Call a hook; a failing hook is logged and must not stop the reader."""
        try:
            getattr(self, name)(*args)
        except Exception:
            log.exception("card callback %s%r failed", name, args[:1])
