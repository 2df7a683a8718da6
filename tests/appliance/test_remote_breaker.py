"""The grid operator opens and closes a meter's supply by a signed ``breaker`` command (JP6794864B2):
only its certified key is obeyed, once per serial, journaled, shown to the household; a company's is
refused as a security error."""
from __future__ import annotations

from datetime import timedelta

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.trust.certificate import GridRole
from appliance.trust.commands import sign_command
from core_kit import METER, START, Registry, Role, core
from drivers.breaker import RelayBreaker


@pytest.fixture
def meter(tmp_path, clock):
    registry = Registry()
    pins = MockFactory()
    relay = RelayBreaker(17, tmp_path / "breaker.json", pin_factory=pins, clock=clock)
    service, _uplink = core(tmp_path, clock, root_public_key=registry.public, breaker=relay)
    yield registry, service, pins
    service.store.close()
    relay.shutdown()


def order(party, action, serial, clock, reason="", **kw):
    return sign_command("breaker", meter_id=kw.pop("meter_id", METER), company_key=party.key,
                        certificate=party.cert, now=clock.now(), action=action, reason=reason, serial=serial, **kw)


def test_the_grid_operator_opens_and_closes_the_supply_once_per_serial(meter, clock):
    registry, service, pins = meter
    grid = registry.certify("CHUGOKU-NW", GridRole.GRID_OPERATOR)
    assert clock.now() == START
    opening = order(grid, "open", 5, clock, reason="解約後の供給停止")
    service.submit_command(opening)
    service.step()
    assert not pins.pin(17).state and service.breaker.closed is False
    state = service.store.breaker_state()
    assert state.reason == "grid operator CHUGOKU-NW: 解約後の供給停止"
    (notice,) = [a for a in service.store.alerts() if a["kind"] == "breaker_remote"]
    assert notice["company_code"] == "CHUGOKU-NW" and "電気の供給を止めました" in notice["message_ja"]

    service.submit_command(opening)  # the same order again: a replay
    clock.advance(timedelta(seconds=10))
    service.submit_command(order(grid, "close", 4, clock))  # an older serial, newly signed: also a replay
    service.step()
    assert service.breaker.closed is False
    refusals = [a for a in service.store.alerts() if a["kind"] == "security_error"]
    assert [a["detail"]["code"] for a in refusals] == ["replayed"] and refusals[0]["count"] == 2

    service.submit_command(order(grid, "close", 6, clock, reason="再契約"))
    service.step()
    assert pins.pin(17).state and service.breaker.closed
    journal = [(r.action, r.source, r.outcome) for r in reversed(service.store.breaker_requests())]
    assert journal == [("open", "grid:CHUGOKU-NW", "applied"), ("close", "grid:CHUGOKU-NW", "applied")]


def test_a_company_signed_breaker_command_is_refused_as_a_security_error(meter, clock):
    registry, service, pins = meter
    power_company = registry.certify("A", Role.SUPPLY)
    rogue_grid = Registry().certify("CHUGOKU-NW", GridRole.GRID_OPERATOR)  # certified by another registry
    service.submit_command(order(power_company, "open", 1, clock, reason="未払い"))
    service.submit_command(order(rogue_grid, "open", 1, clock))
    service.step()
    assert pins.pin(17).state and service.breaker.closed  # the supply stays on
    assert service.store.breaker_requests() == []  # nothing journaled, nothing applied
    alerts = {a["detail"]["code"]: a for a in service.store.alerts() if a["kind"] == "security_error"}
    assert set(alerts) == {"not_grid_operator", "untrusted_certificate"}
    assert alerts["not_grid_operator"]["company_code"] == "A"
    assert "送配電事業者以外" in alerts["not_grid_operator"]["message_ja"]
    assert service.store.last_serial("A") is None  # a refused order spends no serial


def test_an_order_for_another_meter_or_expired_is_refused(meter, clock):
    registry, service, _pins = meter
    grid = registry.certify("CHUGOKU-NW", GridRole.GRID_OPERATOR)
    service.submit_command(order(grid, "open", 1, clock, meter_id="MTR-OTHER"))
    late = order(grid, "open", 2, clock, ttl=timedelta(minutes=1))
    clock.advance(timedelta(minutes=2))
    service.submit_command(late)
    service.step()
    assert service.breaker.closed
    assert {a["detail"]["code"] for a in service.store.alerts() if a["kind"] == "security_error"} == \
        {"wrong_meter", "expired"}
