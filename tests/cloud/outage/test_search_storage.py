"""The operators' search on both backends: by part of an address (area names, or a street a customer
gave), by meter id or customer number, a page at a time in (area, meter) order; the distribution system
of each registration kept across imports; and what a customer was sent."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from appliance.clock import JST
from cloud.outage.model import Area, Event, Language, NotificationState, Outage, OutageKind, OutageStatus
from cloud.outage.topology import FleetSpec, area_of, circuit_of, registrations

SPEC = FleetSpec(meters=600, area_size=20)  # 30 areas: two districts in each of the 15 cities
AT = datetime(2026, 11, 23, 10, 0, tzinfo=JST)


def _ids(regs):
    return [r.meter_id for r in regs]


def test_an_address_search_pages_through_the_areas_it_names(storage):
    storage.upsert_registrations(registrations(SPEC))
    city = area_of(1).city  # 広島市南区: areas 1 and 16
    found = storage.find_registrations(f"広島 {city}", 25)
    assert len(found) == 25 and all(r.area.city == city for r in found)
    assert found == sorted(found, key=lambda r: (r.area.key, r.meter_id))
    rest = storage.find_registrations(f"広島 {city}", 25, 25)
    assert len(rest) == 15 and not set(_ids(found)) & set(_ids(rest))
    district = area_of(16)
    assert _ids(storage.find_registrations(f"{district.city}{district.district}", 50)) == \
        [f"SM{n:07d}" for n in range(16 * 20, 17 * 20)]
    assert storage.find_registrations("大阪府", 10) == []
    assert storage.find_registrations("%", 10) == [] and storage.find_registrations("   ", 10) == []


def test_a_street_only_a_customer_gave_is_found_and_ids_match_exactly(storage):
    storage.upsert_registrations(registrations(SPEC))
    storage.request_email("SM0000042", "a@example.jp", "山田 花子", "2-3 メゾン紙屋町101", "7300011", Language.JA)
    assert _ids(storage.find_registrations("メゾン紙屋町", 10)) == ["SM0000042"]
    assert _ids(storage.find_registrations(f"{area_of(2).city} メゾン", 10)) == ["SM0000042"]
    assert _ids(storage.find_registrations("sm0000042", 10)) == ["SM0000042"]
    assert _ids(storage.find_registrations("C000000042", 10)) == ["SM0000042"]
    assert storage.find_registrations("SM00000", 10) == []  # a part of an id is no id


def test_the_distribution_system_is_kept_and_an_import_without_it_forgets_nothing(storage):
    fleet = list(registrations(SPEC))
    storage.upsert_registrations(fleet[:2])
    stored = storage.registration("SM0000001")
    assert (stored.substation, stored.feeder, stored.section) == tuple(vars(circuit_of(SPEC, 1)).values())
    assert stored.substation.endswith("変電所") and stored.feeder.endswith("号線")
    storage.upsert_registrations([replace(fleet[1], substation="", feeder="", section="", name="changed")])
    again = storage.registration("SM0000001")
    assert (again.name, again.substation, again.section) == ("changed", stored.substation, stored.section)


def test_who_is_down_now_and_what_they_were_sent(storage):
    storage.upsert_registrations(registrations(SPEC))
    area = Area.from_key(area_of(0).key)
    o = storage.save_outage(Outage(None, OutageKind.AREA, OutageStatus.DECLARED, area, AT, AT, declared_at=AT))
    storage.add_members(o.id, {"SM0000001": AT, "SM0000002": AT})
    storage.restore_members(o.id, {"SM0000002": AT + timedelta(minutes=5)})
    assert storage.current_outages_of(["SM0000001", "SM0000002", "SM0000003"]) == {"SM0000001": [o.id]}
    storage.add_notifications([(f"{o.id}:SM0000001:declared", Event.DECLARED, "SM0000001", o.id, True, AT, {}),
                               (f"{o.id}:SM0000002:declared", Event.DECLARED, "SM0000002", o.id, True, AT, {})], AT)
    [claimed, _] = storage.claim_notifications("n1", AT, 60, 10, urgent_only=False)
    storage.finish_notification(claimed.id, "n1", NotificationState.SENT, AT + timedelta(seconds=3))
    [record] = storage.notifications_of(claimed.meter_id)
    assert (record.event, record.state, record.outage_id, record.sent_at) == \
        (Event.DECLARED, NotificationState.SENT, o.id, AT + timedelta(seconds=3))


def test_a_reader_of_the_open_outages_gets_unchanged_ones_back_as_they_were(storage):
    made = [storage.save_outage(Outage(None, OutageKind.AREA, OutageStatus.DECLARED, area_of(i), started_at=AT,
                                       detected_at=AT)) for i in range(3)]
    first, rows = storage.open_outages_reusing({})
    changed = replace(made[1], current_count=7)
    storage.save_outage(changed)
    storage.save_outage(replace(made[2], status=OutageStatus.RESTORED, restored_at=AT))
    again, _ = storage.open_outages_reusing(rows)
    assert again == storage.outages(True) == [made[0], changed]
    assert again[0] is first[0] and again[1] is not first[1]
