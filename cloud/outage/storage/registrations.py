"""Registrations (Table 1): who lives where, behind which concentrator, and how to reach them.

The utility's records arrive by import (``upsert_registrations``); a customer completes their own on
the public site: an address given there waits in ``pending_email`` until it is confirmed."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from appliance.clock import from_epoch

from ..model import Area, Language, Registration
from .database import Database, chunks, statement

COLUMNS = ("meter_id, customer_number, prefecture, city, district, concentrator_id, email, name, language, unsubscribed, "
           "commissioned_at, street, postal_code, pending_email, email_confirmed_at, substation, feeder, section")

UPSERT = statement(
    "INSERT INTO registrations (meter_id, customer_number, prefecture, city, district, area, concentrator_id, "
    "email, name, language, unsubscribed, commissioned_at, street, postal_code, substation, feeder, section) "
    "VALUES (:meter_id, :customer_number, :prefecture, :city, :district, :area, :concentrator_id, :email, :name, "
    ":language, :unsubscribed, :commissioned_at, :street, :postal_code, :substation, :feeder, :section) "
    "ON CONFLICT (meter_id) DO UPDATE SET customer_number = excluded.customer_number, "
    "prefecture = excluded.prefecture, city = excluded.city, district = excluded.district, "
    "area = excluded.area, concentrator_id = excluded.concentrator_id, "
    # what the customer confirmed on the public site is theirs: the records' address, name and language
    # do not replace it; and only the customer lifts an opt-out (the site's resubscribe or confirmation)
    + ", ".join(f"{c} = CASE WHEN registrations.email_confirmed_at IS NULL THEN excluded.{c} ELSE registrations.{c} END"
                for c in ("email", "name", "language")) + ", "
    "unsubscribed = CASE WHEN registrations.unsubscribed = 1 THEN 1 ELSE excluded.unsubscribed END, "
    # a re-registration that does not say when the meter was commissioned keeps what was known
    "commissioned_at = COALESCE(excluded.commissioned_at, registrations.commissioned_at), "
    # nor does one without the street address forget what the customer entered on the public site
    "street = CASE WHEN excluded.street = '' THEN registrations.street ELSE excluded.street END, "
    "postal_code = CASE WHEN excluded.postal_code = '' THEN registrations.postal_code ELSE excluded.postal_code END, "
    # records that do not name the distribution system keep what an earlier import said of it
    + ", ".join(f"{c} = CASE WHEN excluded.{c} = '' THEN registrations.{c} ELSE excluded.{c} END"
                for c in ("substation", "feeder", "section"))
)
ADD_PLACE = statement(
    "INSERT INTO places (area, prefecture, city, district, label) VALUES (:area, :prefecture, :city, :district, :label) "
    "ON CONFLICT (area) DO NOTHING")
COMMISSIONED = statement(
    "SELECT meter_id, commissioned_at FROM registrations WHERE meter_id IN :meter_ids "
    "AND commissioned_at IS NOT NULL",
    "meter_ids",
)
CONCENTRATOR_OF = statement(
    "SELECT meter_id, concentrator_id FROM registrations WHERE meter_id IN :meter_ids", "meter_ids")
REQUEST_EMAIL = statement(
    "UPDATE registrations SET pending_email = :email, name = :name, street = :street, postal_code = :postal_code, "
    "language = :language WHERE meter_id = :meter_id")
CONFIRM_EMAIL = statement(
    "UPDATE registrations SET email = pending_email, pending_email = NULL, email_confirmed_at = :at, unsubscribed = 0 "
    "WHERE meter_id = :meter_id AND pending_email = :email")
SET_CONTACT = statement("UPDATE registrations SET name = :name, street = :street WHERE meter_id = :meter_id")
FORGET = statement(
    "UPDATE registrations SET email = NULL, pending_email = NULL, email_confirmed_at = NULL, name = '', street = '', "
    "postal_code = '', unsubscribed = 1 WHERE meter_id = :meter_id")
SET_UNSUBSCRIBED = statement("UPDATE registrations SET unsubscribed = :unsubscribed WHERE meter_id = :meter_id")
BY_METER = statement(f"SELECT {COLUMNS} FROM registrations WHERE meter_id IN :meter_ids", "meter_ids")
IN_AREA = statement(f"SELECT {COLUMNS} FROM registrations WHERE area = :area ORDER BY meter_id")
COUNT = statement("SELECT COUNT(*) FROM registrations")
AREA_SIZES = statement("SELECT area, COUNT(*) FROM registrations WHERE area IN :areas GROUP BY area", "areas")
LAYOUT = statement("SELECT area, concentrator_id, COUNT(*) FROM registrations GROUP BY area, concentrator_id")
PLACEMENT = statement("SELECT meter_id, area, concentrator_id FROM registrations WHERE meter_id IN :meter_ids", "meter_ids")
VERSION = statement("SELECT version FROM registrations_version WHERE id = 1")
BUMP_VERSION = statement("UPDATE registrations_version SET version = version + 1 WHERE id = 1")
TOPOLOGY = statement("SELECT area, concentrator_id, meter_id FROM registrations WHERE area IN :areas", "areas")


def _registration(row: Sequence[Any]) -> Registration:
    (meter_id, customer, pref, city, district, conc, email, name, lang, unsub, commissioned, street, postal_code,
     pending_email, confirmed, substation, feeder, section) = row
    return Registration(
        meter_id=meter_id, customer_number=customer, area=Area(pref, city, district), concentrator_id=conc,
        email=email, name=name, language=Language(lang), unsubscribed=bool(unsub),
        commissioned_at=from_epoch(commissioned), street=street, postal_code=postal_code, pending_email=pending_email,
        email_confirmed_at=from_epoch(confirmed), substation=substation, feeder=feeder, section=section,
    )


class Registrations(Database):
    def upsert_registrations(self, registrations: Iterable[Registration]) -> int:
        rows = [
            (
                r.meter_id, r.customer_number, r.area.prefecture, r.area.city, r.area.district, r.area.key,
                r.concentrator_id, r.email, r.name, r.language.value, int(r.unsubscribed),
                r.commissioned_at.timestamp() if r.commissioned_at else None, r.street, r.postal_code,
                r.substation, r.feeder, r.section,
            )
            for r in registrations
        ]
        places = {row[5]: (row[5], row[2], row[3], row[4], row[2] + row[3] + row[4]) for row in rows}
        with self.transaction():
            for chunk in chunks(rows, 5000):
                self._executemany(UPSERT, chunk)
            self._executemany(ADD_PLACE, list(places.values()))
            if rows:  # an area or a concentrator may have changed: the manager's roster reloads
                self._execute(BUMP_VERSION)
        return len(rows)

    def set_unsubscribed(self, meter_id: str, unsubscribed: bool = True) -> bool:
        with self.transaction():
            return self._execute(SET_UNSUBSCRIBED, {"unsubscribed": int(unsubscribed), "meter_id": meter_id}).rowcount > 0

    # ----- the customer's own changes on the public site (each one row; False: no such meter)
    def request_email(self, meter_id: str, email: str, name: str, street: str, postal_code: str,
                      language: Language) -> bool:
        """A registration from the public site: the address waits for its confirmation link; any confirmed
        address keeps receiving outage e-mail until then."""
        with self.transaction():
            return self._execute(REQUEST_EMAIL, {"meter_id": meter_id, "email": email, "name": name, "street": street,
                                                 "postal_code": postal_code, "language": language.value}).rowcount > 0

    def confirm_email(self, meter_id: str, email: str, at: datetime) -> bool:
        """The confirmation link of ``email`` was followed: it becomes the address outage e-mail goes to.
        False if ``email`` is no longer the one waiting (a newer one replaced it, or it was confirmed)."""
        with self.transaction():
            return self._execute(CONFIRM_EMAIL, {"meter_id": meter_id, "email": email, "at": at.timestamp()}).rowcount > 0

    def set_contact(self, meter_id: str, name: str, street: str) -> bool:
        with self.transaction():
            return self._execute(SET_CONTACT, {"meter_id": meter_id, "name": name, "street": street}).rowcount > 0

    def forget_registration(self, meter_id: str) -> bool:
        """The customer deleted their registration: their personal data goes (addresses, name, street) and
        no e-mail goes out; the utility's own record of the meter (customer number, area) stays."""
        with self.transaction():
            return self._execute(FORGET, {"meter_id": meter_id}).rowcount > 0

    def registrations(self, meter_ids: Sequence[str]) -> dict[str, Registration]:
        out: dict[str, Registration] = {}
        for chunk in chunks(list(meter_ids)):
            for row in self._query(BY_METER, {"meter_ids": chunk}):
                out[row[0]] = _registration(row)
        return out

    def registration(self, meter_id: str) -> Registration | None:
        return self.registrations([meter_id]).get(meter_id)

    def registrations_in_area(self, area: Area) -> list[Registration]:
        return [_registration(r) for r in self._query(IN_AREA, {"area": area.key})]

    def commissioning(self, meter_ids: Sequence[str]) -> dict[str, datetime]:
        """The known commissioning times of these meters (meters without one are left out)."""
        return {meter_id: from_epoch(at) for meter_id, at in self._rows_in(COMMISSIONED, list(meter_ids))}

    def concentrator_of(self, meter_ids: Sequence[str]) -> dict[str, str]:
        """The concentrator each of these meters is registered under (unregistered meters left out)."""
        return dict(self._rows_in(CONCENTRATOR_OF, list(meter_ids)))

    def registration_count(self) -> int:
        return int(self._scalar(COUNT))

    def area_sizes(self, areas: Sequence[str]) -> dict[str, int]:
        """Customers per area: the denominator of the indoor rule."""
        out: dict[str, int] = {}
        for chunk in chunks(list(areas)):
            for area, n in self._query(AREA_SIZES, {"areas": chunk}):
                out[area] = int(n)
        return out

    def concentrators_of_areas(self, areas: Sequence[str]) -> dict[str, dict[str, list[str]]]:
        """area -> concentrator -> its meters, for telling a communication fault from an outage."""
        out: dict[str, dict[str, list[str]]] = {}
        for chunk in chunks(list(areas)):
            for area, conc, meter in self._query(TOPOLOGY, {"areas": chunk}):
                out.setdefault(area, {}).setdefault(conc, []).append(meter)
        return out

    # ----- the manager's roster (:mod:`cloud.outage.roster`)
    def registrations_version(self) -> int:
        """Bumped by every import: a change means areas or concentrators may have changed."""
        return int(self._scalar(VERSION))

    def registration_layout(self) -> list[tuple[str, str, int]]:
        """(area, concentrator, meters) for every concentrator: one row per concentrator, not per meter."""
        return [(area, conc, int(n)) for area, conc, n in self._query(LAYOUT)]

    def placements(self, meter_ids: Sequence[str]) -> dict[str, tuple[str, str]]:
        """meter -> (area key, concentrator) for these meters (unregistered meters left out)."""
        out: dict[str, tuple[str, str]] = {}
        for chunk in chunks(list(meter_ids)):
            for meter_id, area, conc in self._query(PLACEMENT, {"meter_ids": chunk}):
                out[meter_id] = (area, conc)
        return out
