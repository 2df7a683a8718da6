"""The public site's changes to a registration, on both backends: a pending address is not reachable
until confirmed, an import keeps what the customer entered, and forgetting erases the personal data."""
from __future__ import annotations

from datetime import datetime

from appliance.clock import JST
from cloud.outage.model import Area, Language, Registration

AREA = Area("広島県", "広島市中区", "基町1丁目")
AT = datetime(2026, 11, 23, 10, 0, tzinfo=JST)


def test_a_pending_address_is_reachable_only_once_confirmed(storage):
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN1")])
    assert storage.request_email("SM1", "a@example.jp", "山田", "1-2-3", "7300011", Language.EN)
    r = storage.registration("SM1")
    assert (r.pending_email, r.email, r.reachable, r.street, r.language) == ("a@example.jp", None, False, "1-2-3", Language.EN)
    assert not storage.confirm_email("SM1", "other@example.jp", AT)  # only the address waiting
    assert storage.confirm_email("SM1", "a@example.jp", AT)
    r = storage.registration("SM1")
    assert (r.email, r.pending_email, r.email_confirmed_at, r.reachable) == ("a@example.jp", None, AT, True)
    assert not storage.confirm_email("SM1", "a@example.jp", AT)  # once
    assert not storage.request_email("SM404", "a@example.jp", "", "", "", Language.JA)


def test_an_import_keeps_the_customers_street_and_forgetting_erases_it(storage):
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN1")])
    storage.request_email("SM1", "a@example.jp", "山田", "1-2-3", "7300011", Language.JA)
    storage.confirm_email("SM1", "a@example.jp", AT)
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN2", email="a@example.jp", name="山田")])
    r = storage.registration("SM1")
    assert (r.street, r.postal_code, r.concentrator_id, r.email_confirmed_at) == ("1-2-3", "7300011", "CN2", AT)
    assert storage.set_contact("SM1", "山田 花子", "4-5")
    assert storage.forget_registration("SM1")
    r = storage.registration("SM1")
    assert (r.email, r.pending_email, r.name, r.street, r.postal_code, r.email_confirmed_at) == (None, None, "", "", "", None)
    assert r.unsubscribed and (r.customer_number, r.area) == ("C1", AREA)


def test_an_import_never_replaces_a_confirmed_address_nor_lifts_an_opt_out(storage):
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN1", email="old@example.jp", name="旧"),
                                  Registration("SM2", "C2", AREA, "CN1", email="records@example.jp")])
    storage.request_email("SM1", "mine@example.jp", "山田 花子", "1-2-3", "7300011", Language.EN)
    storage.confirm_email("SM1", "mine@example.jp", AT)
    storage.set_unsubscribed("SM2", True)
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN1", email="old@example.jp", name="旧"),
                                  Registration("SM2", "C2", AREA, "CN1", email="new-records@example.jp")])
    one, two = storage.registration("SM1"), storage.registration("SM2")
    assert (one.email, one.name, one.language) == ("mine@example.jp", "山田 花子", Language.EN)
    assert two.email == "new-records@example.jp" and two.unsubscribed and not two.reachable
    storage.forget_registration("SM1")  # deleted on the site: the next import brings back no e-mail
    storage.upsert_registrations([Registration("SM1", "C1", AREA, "CN1", email="old@example.jp")])
    assert not storage.registration("SM1").reachable
