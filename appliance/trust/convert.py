"""From a verified document to the core's :class:`ContractChange` (the same path as a CLI change)."""
from __future__ import annotations

from appliance.domain import ContractChange

from .verify import VerifiedDocument


def to_change(verified: VerifiedDocument, source: str) -> ContractChange:
    """The pending change 56B/56C a verified document asks for. ``source`` is e.g. ``card:1`` or ``remote``.

    ``document`` keeps the signed fields as they were on the card, for the log and the display; the
    signed bytes themselves are ``verified.raw``.
    """
    doc = verified.document
    return ContractChange(
        kind=doc.kind,
        action=doc.action,
        company=doc.company,
        switch=doc.switch,
        data_types=doc.data_types,
        menu=doc.menu,
        send_interval=doc.send_interval,
        measure_interval=doc.measure_interval,
        source=source,
        serial=doc.serial,
        received_at=verified.verified_at,
        document=dict(verified.payload),
    )
