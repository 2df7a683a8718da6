"""The company's switching desk (embodiment 3, steps 2 and 4): what it offers, what it refuses, and
that what it sends is the signed contract change a meter verifies like a card."""
from __future__ import annotations

import json
import stat
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit

from cardkit import certified_company  # noqa: E402

from appliance.clock import JST, ManualClock  # noqa: E402
from appliance.datatypes import parse_data_types  # noqa: E402
from appliance.domain import Role, SwitchTime, WeeklySlot  # noqa: E402
from appliance.trust import keys  # noqa: E402
from appliance.trust.commands import verify_command  # noqa: E402
from cloud.switch_desk import (DeskCompany, DeskRefusal, SerialBook, SwitchDesk, SwitchRequest, load_desk,  # noqa: E402
                               write_desk)

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=JST)


@pytest.fixture
def setup(tmp_path):
    root = keys.generate()
    b = certified_company(root, "B", "Bでんき", Role.SUPPLY)
    sent: list[tuple[str, bytes]] = []
    clock = ManualClock(NOW)
    company = DeskCompany("B", "Bでんき", Role.SUPPLY, "mqtt://b", parse_data_types("time,energy"), ("夜トク",))
    desk = SwitchDesk(company, key=b.key, certificate=b.cert, serials=SerialBook(tmp_path / "serial"),
                      publish=lambda topic, payload: sent.append((topic, payload)), clock=clock, secret=b"s")
    return desk, sent, clock, root, b


def test_an_accepted_offer_sends_one_signed_change_the_meter_verifies(setup, tmp_path):
    desk, sent, clock, root, _ = setup
    offer = desk.offer(SwitchRequest("SM0000001", "B", SwitchTime(weekly=(WeeklySlot(4, "18:00"),)), "夜トク"))
    assert sent == []  # step 2 only shows the confirmation
    assert desk.accept(offer.token) == 1 and desk.accept(desk.offer(offer.request).token) == 2
    topic, payload = sent[0]
    assert topic == "meters/SM0000001/commands"
    cmd = verify_command(payload, root_public_key=keys.public_raw(root), meter_id="SM0000001", now=clock.now())
    doc = cmd.document.document
    assert doc.company.code == "B" and doc.menu == "夜トク" and doc.serial == 1 and doc.switch.weekly[0].at == "18:00"
    assert stat.S_IMODE((tmp_path / "serial").stat().st_mode) == 0o600


@pytest.mark.parametrize("request_, field", [
    (SwitchRequest("SM0000001", "B", SwitchTime(at=NOW - timedelta(minutes=5))), "switch"),
    (SwitchRequest("SM0000001", "B", SwitchTime(at=NOW + timedelta(days=400))), "switch"),
    (SwitchRequest("SM0000001", "B", SwitchTime(immediate=True), "unknown menu"), "menu"),
    (SwitchRequest("SM0000001", "C", SwitchTime(immediate=True)), "company"),
])
def test_a_bad_request_is_refused_before_anything_is_signed(setup, request_, field):
    desk, sent, *_ = setup
    with pytest.raises(DeskRefusal) as refused:
        desk.offer(request_)
    assert refused.value.field == field and sent == []


def test_a_forged_altered_or_stale_offer_sends_nothing(setup):
    desk, sent, clock, *_ = setup
    offer = desk.offer(SwitchRequest("SM0000001", "B", SwitchTime(immediate=True)))
    body, mac = offer.token.split(".")
    import base64

    other = json.loads(base64.urlsafe_b64decode(body))
    other["r"]["meter_id"] = "SM0000002"  # someone else's meter
    forged = base64.urlsafe_b64encode(json.dumps(other, sort_keys=True).encode()).decode() + "." + mac
    for token in (forged, "nonsense", offer.token[:-4] + "AAAA"):
        with pytest.raises(DeskRefusal):
            desk.accept(token)
    clock.advance(timedelta(minutes=16))
    with pytest.raises(DeskRefusal) as refused:
        desk.accept(offer.token)
    assert refused.value.reason == "desk_offer_expired" and sent == []


def test_a_desk_directory_round_trips_with_its_key_kept_private(setup, tmp_path):
    desk, _, clock, _, b = setup
    write_desk(tmp_path / "desk", desk.company, b.key, b.cert)
    loaded = load_desk(tmp_path / "desk", publish=lambda *_: None, clock=clock, secret=b"s")
    assert loaded.company == desk.company
    assert stat.S_IMODE((tmp_path / "desk" / "company.key").stat().st_mode) == 0o600
