"""Region shards: two managers of two regions over one store each judge exactly their region's areas and
never touch the other's; managers of one region take turns; the region map is checked."""
from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from appliance.clock import ceil_to
from cloud.outage.collector import Timing
from cloud.outage.manager import ManagerConfig, OutageManager
from cloud.outage.model import Area, DaEvent, MeterState, OutageKind, OutageStatus, Reading, StatusEvent
from cloud.outage.regions import (
    OutsideRegion,
    RegionMapError,
    load_region_map,
    lock_for_judging,
    region_map,
    region_named,
)
from cloud.outage.storage import open_storage
from cloud.outage.topology import CITIES, FleetSpec, area_meters, area_of, meter_id, registration, registrations

TIMING = Timing(timedelta(minutes=30), timedelta(minutes=2))
REGIONS = region_map({"west": ["広島県", "山口県"], "east": ["岡山県", "鳥取県", "島根県"]})
SPEC = FleetSpec(meters=2 * len(CITIES) * 10, area_size=10)  # every city's first two districts
DOWN_AREAS = {"west": (0, 8), "east": (5, 11)}  # 広島県 and 山口県; 岡山県 and 鳥取県 (area_of cycles the cities)


def _gasps(storage, clock):
    """Every meter reads a window; in the next one, the down areas' homes send a last gasp and stay silent."""
    everyone = [meter_id(n) for n in range(SPEC.meters)]
    down = {meter_id(n) for areas in DOWN_AREAS.values() for a in areas for n in area_meters(SPEC, a)}
    end = ceil_to(clock.now(), TIMING.period)
    storage.store_readings([Reading(m, 1, end - TIMING.period, end, "{}") for m in everyone], end)
    storage.store_statuses([StatusEvent(m, MeterState.POWER_FAIL, end + timedelta(minutes=3)) for m in down], end)
    end += TIMING.period
    storage.store_readings([Reading(m, 2, end - TIMING.period, end, "{}") for m in everyone if m not in down], end)
    clock.set(end + TIMING.grace + timedelta(seconds=1))


def _areas(outages) -> set[str]:
    return {o.area.key for o in outages}


def _keys(region: str) -> set[str]:
    return {area_of(a).key for a in DOWN_AREAS[region]}


@pytest.fixture
def regional(storage_url, day_clock):
    """The fleet in one store, and a manager per region, each on its own connection as in production."""
    stores = [open_storage(storage_url) for _ in REGIONS]
    stores[0].upsert_registrations(registrations(SPEC))
    managers = {name: OutageManager(s, day_clock, ManagerConfig(timing=TIMING), region=r)
                for s, (name, r) in zip(stores, REGIONS.items(), strict=True)}
    _gasps(stores[0], day_clock)
    yield managers, stores[0], day_clock
    for s in stores:
        s.close()


def test_each_region_opens_and_declares_only_its_own_outages(regional):
    managers, storage, clock = regional
    assert _areas(managers["west"].tick()) == _keys("west")
    assert _areas(storage.outages()) == _keys("west")  # the east's homes are down too, but not the west's to judge
    assert {k.split("/")[0] for k in managers["west"].roster.sizes} == {"広島県", "山口県"}  # its roster only
    assert _areas(managers["east"].tick()) == _keys("east")
    assert _areas(storage.outages()) == _keys("west") | _keys("east")
    clock.advance(40)  # past the declaration delay
    managers["west"].tick()
    status = {o.area.key: o.status for o in storage.outages()}
    assert {status[k] for k in _keys("west")} == {OutageStatus.DECLARED}
    assert {status[k] for k in _keys("east")} == {OutageStatus.SUSPECTED}  # left for the east's manager
    area_of_outage = {o.id: o.area.key for o in storage.outages()}
    assert {area_of_outage[int(key.split(":")[0])] for key, *_ in storage.notification_states()} == _keys("west")
    managers["east"].tick()
    assert {o.status for o in storage.outages()} == {OutageStatus.DECLARED}
    assert {o.kind for o in storage.outages()} == {OutageKind.AREA}
    assert [c.area.key for c in managers["east"].area_counts()] == sorted(_keys("east"))


def test_a_region_refuses_input_about_another_regions_areas(regional):
    managers, storage, clock = regional
    managers["east"].tick()
    before = storage.outages()
    east_outage = before[0]
    west = managers["west"]
    with pytest.raises(OutsideRegion, match="not in region west"):
        west.report_da(DaEvent(east_outage.area, "outage", clock.now(), "da-1"))
    with pytest.raises(OutsideRegion):
        west.operator_update(east_outage.id, response_status="dispatched")
    with pytest.raises(OutsideRegion):
        west.plan_outage(east_outage.area, clock.now() + timedelta(days=1), clock.now() + timedelta(days=1, hours=2))
    assert storage.da_events() == []
    assert storage.outages() == before
    assert managers["east"].report_da(DaEvent(east_outage.area, "outage", clock.now(), "da-1")).id == east_outage.id


def _candidates(manager, storage) -> set[str]:
    """The meters a region's manager reads as possibly down, as its tick reads them."""
    closed = manager.closed_window(manager.clock.now())
    return {c.meter_id for c in storage.down_candidates(closed, manager.region.prefectures)}


def test_an_import_that_moves_meters_to_another_prefecture_moves_their_evidence(regional):
    """Each meter's evidence carries its registration's prefecture (schema step 11): an import that moves
    a down area's homes to another region's prefecture hands them to that region's manager, and a meter
    heard before it was registered joins its region when its registration arrives."""
    managers, storage, clock = regional
    moved = [meter_id(n) for n in area_meters(SPEC, DOWN_AREAS["west"][0])]  # 広島県, all gasping
    assert set(moved) <= _candidates(managers["west"], storage) and not set(moved) & _candidates(managers["east"], storage)
    okayama = area_of(DOWN_AREAS["east"][0])
    new_home = Area(okayama.prefecture, okayama.city, "移転先1丁目")
    storage.upsert_registrations([replace(registration(SPEC, int(m[2:])), area=new_home) for m in moved])
    assert not set(moved) & _candidates(managers["west"], storage) and set(moved) <= _candidates(managers["east"], storage)
    assert _areas(managers["west"].tick()) == _keys("west") - {area_of(DOWN_AREAS["west"][0]).key}
    assert _areas(managers["east"].tick()) == _keys("east") | {new_home.key}
    # heard, then silent, before its registration: no region's until it is registered
    stranger = "SM9999999"
    end = managers["west"].closed_window(clock.now())
    storage.store_readings([Reading(stranger, 1, end - 2 * TIMING.period, end - TIMING.period, "{}")], end)
    assert stranger not in _candidates(managers["west"], storage) | _candidates(managers["east"], storage)
    storage.upsert_registrations([replace(registration(SPEC, 0), meter_id=stranger)])  # 広島県
    assert stranger in _candidates(managers["west"], storage)


def _tick_in_thread(manager) -> threading.Event:
    done = threading.Event()
    threading.Thread(target=lambda: (manager.tick(), done.set()), daemon=True).start()
    return done


def test_managers_of_one_region_take_turns_and_of_two_regions_work_side_by_side(storage_url, regional):
    managers, _, clock = regional
    holder = open_storage(storage_url)
    standby = open_storage(storage_url)
    try:
        west_again = OutageManager(standby, clock, ManagerConfig(timing=TIMING), region=REGIONS["west"])
        with holder.transaction():
            lock_for_judging(holder, REGIONS["west"])  # a west manager is judging
            waiting = _tick_in_thread(west_again)
            if holder.dialect == "postgresql":  # SQLite's one writer at a time holds every region back
                assert _tick_in_thread(managers["east"]).wait(30)
            assert not waiting.wait(1.0)
        assert waiting.wait(30)  # its turn came once the first one committed
    finally:
        holder.close()
        standby.close()


def test_the_region_map_is_checked(tmp_path):
    with pytest.raises(RegionMapError, match="'広島' is not one of the 47 prefectures"):
        region_map({"west": ["広島"]})
    with pytest.raises(RegionMapError, match="広島県 is in two regions, 'west' and 'east'"):
        region_map({"west": ["広島県"], "east": ["岡山県", "広島県"]})
    with pytest.raises(RegionMapError, match="region 'east' names no prefecture"):
        region_map({"west": ["広島県"], "east": []})
    path = tmp_path / "regions.toml"
    path.write_text('[regions]\nwest = ["広島県", "山口県"]\neast = ["岡山県"]\n', encoding="utf-8")
    assert load_region_map(path)["west"].prefectures == ("広島県", "山口県")
    assert region_named(path, "east").prefectures == ("岡山県",)
    with pytest.raises(RegionMapError, match="no region 'north' \\(regions: west, east\\)"):
        region_named(path, "north")
    path.write_text('west = ["広島県"]\n', encoding="utf-8")
    with pytest.raises(RegionMapError, match="no \\[regions\\] table"):
        load_region_map(path)
