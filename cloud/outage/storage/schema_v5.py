"""Schema version 5: the registration's street address (Table 1: prefecture / city / district / street),
its postal code, and the public site's double opt-in: an address waits in ``pending_email`` until its
confirmation link is clicked; ``email_confirmed_at`` says when that was.

Frozen like :mod:`.schema_v1`: a later change is a new step.
"""
from __future__ import annotations

from sqlalchemy import Connection, text


def apply(conn: Connection) -> None:
    for column in ("street TEXT NOT NULL DEFAULT ''", "postal_code TEXT NOT NULL DEFAULT ''", "pending_email TEXT",
                   "email_confirmed_at DOUBLE PRECISION"):
        conn.execute(text(f"ALTER TABLE registrations ADD COLUMN {column}"))
