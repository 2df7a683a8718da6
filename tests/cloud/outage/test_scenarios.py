"""Each scenario yields exactly the right e-mails to exactly the right customers (interfaces.md 6).

Fleet: 4 areas of 10 customers, 2 concentrators each; every 10th customer reads English."""
from __future__ import annotations

from datetime import timedelta

from cloud.outage.model import OutageKind, OutageStatus


def area_addresses(p, area_index):
    return sorted(p.emails(n) for n in p.fleet.meters_of_area(area_index))


def test_area_outage_is_declared_after_the_delay_and_mailed_to_that_area_only(pipeline):
    p = pipeline()
    p.window()  # every meter reports: monitoring starts
    p.clock.advance(timedelta(minutes=5))
    p.fleet.power_fail(p.fleet.meters_of_area(0))
    changed = p.step(1)
    assert [(o.kind, o.status) for o in changed] == [(OutageKind.AREA, OutageStatus.SUSPECTED)]
    assert p.smtp.messages == []  # within the declaration delay: nothing yet
    p.step(30)
    assert p.smtp.recipients == area_addresses(p, 0)
    counts = p.manager.area_counts()
    assert [(c.area, c.current, c.peak) for c in counts] == [(p.fleet.area(0), 10, 10)]
    p.step(30)
    p.window()
    assert len(p.smtp.messages) == 10  # still one each


def test_fig_11a_contents_in_japanese_and_english(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=5))  # 10:37:01 JST
    p.fleet.power_fail(p.fleet.meters_of_area(0))
    p.step(1), p.step(30)
    ja = p.smtp.to(p.emails(0))[0]
    body = ja.get_content()
    area = p.fleet.area(0)
    assert ja["Subject"] == "停電情報のお知らせ"
    assert "お客様のお住まい地域が停電しています。" in body
    assert "停電日時：2026年11月23日 10:37" in body
    assert "復旧予定日時：未定" in body
    assert f"停電地域・停電戸数：{area.prefecture} {area.city} {area.district}・10戸" in body
    assert "対応状況：調査中" in body and "停電理由：調査中" in body
    assert "山田 太郎 様" in body and "お客様番号：C000000000" in body
    en = p.smtp.to(p.emails(9))[0]  # every 10th customer chose English
    text = en.get_content()
    assert en["Subject"] == "Notice of power outage information"
    assert "There is a power outage in your area." in text
    assert "Outage since: 2026-11-23 10:37 JST" in text
    assert f"Outage area / homes: {area.district}, {area.city}, {area.prefecture} / 10 homes" in text
    assert en["List-Unsubscribe"].strip().startswith("<http")


def test_indoor_outage_fig_11b_to_that_home_only(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=3))
    meter = p.fleet.meters_of_area(1)[3]
    p.fleet.power_fail([meter])
    p.step(1)
    p.step(30)
    assert p.smtp.recipients == [p.emails(meter)]
    body = p.smtp.messages[0].get_content()
    assert "お客様の屋内が停電しています。" in body
    assert "対応状況：屋内" in body
    assert "停電理由：宅内ブレーカが落ちています" in body
    info = p.manager.meter_info(f"SM{meter:07d}")
    assert info.indoor and info.outage.response_status == "indoor" and info.outage.reason == "home_breaker"


def test_communication_fault_sends_no_customer_email(pipeline):
    p = pipeline()
    p.window()
    conc = "CN000002-1"  # half of area 2 behind one concentrator
    p.fleet.concentrator_fault(conc)
    for _ in range(3):  # long enough that silence alone would be strong evidence
        p.window()
    assert p.smtp.messages == []
    faults = [o for o in p.storage.outages() if o.kind is OutageKind.COMM_FAULT]
    assert [(o.concentrator_id, o.status, o.current_count) for o in faults] == [(conc, OutageStatus.DECLARED, 5)]
    assert p.manager.area_counts() == []
    p.fleet.concentrator_fault(conc, failed=False)
    p.window()
    assert p.storage.outage(faults[0].id).status is OutageStatus.RESTORED
    assert p.smtp.messages == []


def test_a_blink_shorter_than_the_declaration_delay_sends_nothing(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(0)
    p.fleet.power_fail(meters)
    p.step(1)
    p.clock.advance(10)
    p.fleet.power_restore(meters)
    p.step(1)
    p.step(60)
    p.window()
    assert p.smtp.messages == []
    assert [o.status for o in p.storage.outages()] == [OutageStatus.CANCELLED]


def test_restoration_fig_12_once_to_each_affected_customer(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(0)
    p.fleet.power_fail(meters)
    p.step(1), p.step(30)
    p.clock.advance(timedelta(minutes=20))  # 10:57:32
    p.fleet.power_restore(meters[:4])
    p.step(1)
    outage = p.storage.outages()[0]
    assert outage.status is OutageStatus.RESTORING and outage.current_count == 6 and outage.peak_count == 10
    p.clock.advance(timedelta(minutes=10))
    p.fleet.power_restore(meters[4:])
    p.step(1)
    p.window()
    assert p.storage.outage(outage.id).status is OutageStatus.RESTORED
    restored = [m for m in p.smtp.messages if "復旧しました" in m.get_content() or "restored" in m.get_content()]
    assert sorted(m["To"] for m in restored) == area_addresses(p, 0)
    assert len(p.smtp.messages) == 20  # one declaration and one restoration each
    body = p.smtp.to(p.emails(5))[1].get_content()
    assert "お客様のお住まい地域の停電は復旧しました。" in body
    assert "2026年11月23日 10:37　2026年11月23日 11:07" in body
    assert "停電戸数：10戸" in body
    assert "※ 停電戸数は、発生時点の（最大かつ一時的な）戸数であり、短時間で復旧した戸数も含まれております。" in body


def test_expected_restoration_change_updates_only_those_still_out(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=5))
    meters = p.fleet.meters_of_area(3)
    p.fleet.power_fail(meters)
    p.step(1), p.step(30)
    outage = p.storage.outages()[0]
    p.fleet.power_restore(meters[:2])
    p.step(1)
    eta = p.clock.now() + timedelta(hours=2)
    p.manager.operator_update(outage.id, response_status="dispatched", reason="weather", expected_restoration=eta)
    p.step(1)
    updates = [m for m in p.smtp.messages if "復旧予定日時が変わりました" in m.get_content() or "has changed" in m.get_content()]
    assert sorted(m["To"] for m in updates) == sorted(p.emails(n) for n in meters[2:])
    body = p.smtp.to(p.emails(meters[4]))[-1].get_content()
    assert "復旧予定日時：2026年11月23日 12:37" in body and "対応状況：出動中" in body and "停電理由：悪天候" in body
    before = len(p.smtp.messages)
    p.manager.operator_update(outage.id, expected_restoration=eta + timedelta(minutes=10))  # not meaningful
    p.step(1)
    assert len(p.smtp.messages) == before


def test_random_silence_of_a_real_fleet_is_not_an_outage(pipeline):
    p = pipeline()
    p.fleet.silent_rate = 0.05  # each meter misses about one read in twenty, independently
    for _ in range(6):
        p.window()
    assert p.smtp.messages == []
    assert [o for o in p.storage.outages() if o.kind is not OutageKind.COMM_FAULT and o.status is not OutageStatus.CANCELLED] == []


def test_silent_area_without_last_gasps_is_still_found(pipeline):
    p = pipeline()
    p.window()
    p.clock.advance(timedelta(minutes=5))
    p.fleet.power_fail(p.fleet.meters_of_area(2), gasp_share=0.0)  # every last gasp lost
    p.window()  # the area's readings are missing: silent, corroborated by the whole area
    p.step(30)
    assert p.smtp.recipients == area_addresses(p, 2)
