"""The meter config is validated at start; each error names the key and the problem."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from appliance.config import load_config, parse_config
from appliance.datatypes import DataType
from appliance.domain import Role
from appliance.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "meter.example.toml"


def test_the_documented_example_config_loads():
    cfg = load_config(EXAMPLE)
    assert cfg.meter.measurement_interval == timedelta(minutes=30)
    assert cfg.chip.profile == "pzem004t"
    roles = [c.role for c in cfg.contracts]
    assert roles.count(Role.SUPPLY) == 1 and Role.DATA in roles


def base(**meter):
    return {"meter": {"id": "MTR-1", **meter}}


@pytest.mark.parametrize(
    "raw, key, problem",
    [
        ({}, "[meter]", "missing"),
        ({"meter": {}}, "meter.id", "missing"),
        (base(id="bad id!"), "meter.id", "must be 1-64"),
        (base(measurement_interval="0s"), "meter.measurement_interval", "below the 1s minimum"),
        (base(measurement_interval="7m"), "meter.measurement_interval", "divide a day"),
        (base(measurement_interval="soon"), "meter.measurement_interval", "is not a duration"),
        (base(retention="2h"), "meter.retention", "at least one day"),
        ({**base(), "chip": {"tcp": "h:1", "serial": "/dev/x"}}, "chip", "not both"),
        ({**base(), "chip": {"tcp": "nohostport"}}, "chip.tcp", "HOST:PORT"),
        ({**base(), "chip": {"address": 300}}, "chip.address", "1-247"),
        ({**base(), "chip": {"baud": "fast"}}, "chip.baud", "expected int | null, got str"),
        ({**base(), "mqtt": {"port": 70000}}, "mqtt.port", "expected int <= 65535"),
        ({**base(), "mqtt": {"pasword": "x"}}, "mqtt.pasword", "unknown key"),
        ({**base(), "contracts": {"supply": {"company": "A", "data_types": ["power", "gossip"]}}},
         "contracts.supply.data_types", "unknown data type 'gossip'"),
        ({**base(), "contracts": {"supply": {"data_types": ["power"]}}}, "contracts.supply.company", "missing"),
        ({**base(), "contracts": {"data": [{"company": "D", "data_types": ["time"]},
                                           {"company": "D", "data_types": ["power"]}]}},
         "contracts.data[1].company", "already has a contract"),
        ({**base(), "contracts": {"data": [{"company": "D", "data_types": ["time"], "send_interval": "1s"}]}},
         "contracts.data[0].send_interval", "shorter than"),
    ],
)
def test_config_errors_name_the_key_and_the_problem(raw, key, problem):
    with pytest.raises(ConfigError) as err:
        parse_config(raw)
    assert key in str(err.value) and problem in str(err.value)


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "meter.toml"
    bad.write_text("[meter\nid=1")
    with pytest.raises(ConfigError, match="meter.toml: not valid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml")


def test_durations_and_defaults():
    cfg = parse_config({**base(measurement_interval="1s", retention="1d"),
                        "contracts": {"data": [{"company": "D", "data_types": "time,energy", "send_interval": "1d"}]}})
    assert cfg.meter.measurement_interval == timedelta(seconds=1)
    (c,) = cfg.contracts
    assert c.data_types == (DataType.TIME, DataType.ENERGY) and c.send_interval == timedelta(days=1)


@pytest.mark.parametrize(
    "section, values, key, problem",
    [
        ("chip", {"timeout": 0}, "chip.timeout", "expected float > 0.0"),
        ("chip", {"timeout": True}, "chip.timeout", "expected float, got bool"),
        ("chip", {"address": 249}, "chip.address", "outside 1-247"),
        ("chip", {"address": 0}, "chip.address", "outside 1-247"),
        ("mqtt", {"keepalive": 0}, "mqtt.keepalive", "expected int >= 5"),
        ("mqtt", {"port": 0}, "mqtt.port", "expected int >= 1"),
        ("mqtt", {"tls": "yes"}, "mqtt.tls", "expected bool, got str"),
        ("mqtt", {"password": "a", "password_file": "b"}, "mqtt", "not both"),
        ("meter", {"tick": "0s"}, "meter.tick", "above 0s"),
        ("breaker", {"pin": True}, "breaker.pin", "got bool"),
        ("breaker", {"pin": 28}, "breaker.pin", "expected int <= 27"),
        ("breaker", {"pin_factory": "gpio"}, "breaker.pin_factory", "not one of lgpio"),
        ("cards", {"slots": [{"slot": 1, "pcsc": "R"}, {"slot": "1", "nfc": "usb"}]}, "cards.slots[1].slot", "twice"),
        ("supply", {"holdup_ms": 0}, "supply.holdup_ms", "expected int >= 10"),
        ("supply", {"voltage_threshold": 0}, "supply.voltage_threshold", "expected float > 0"),
        ("supply", {"pin_factory": "gpio"}, "supply.pin_factory", "not one of lgpio"),
        ("metrics", {"listen": "9108"}, "metrics.listen", "HOST:PORT"),
        ("confirmation", {"timeout": "0s"}, "confirmation.timeout", "above 0s"),
    ],
)
def test_bad_values_are_refused_in_the_file_by_key_never_rewritten(tmp_path, section, values, key, problem):
    """Each refused value names the file, the key and the reason (0 is not silently made 1.0 or 30)."""
    meter = {"id": "MTR-1", **(values if section == "meter" else {})}
    raw = {"meter": meter} if section == "meter" else {"meter": meter, section: values}
    path = tmp_path / "meter.toml"
    path.write_text(_toml(raw))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}") and problem in message, message


def test_accepted_values_are_kept_as_written():
    cfg = parse_config({**base(), "chip": {"profile": "pzem004t", "address": 0xF8, "timeout": 2},
                        "mqtt": {"keepalive": 5, "will_delay": 0, "port": 8883},
                        "cards": {"slots": [{"slot": 1, "pcsc": "ACS ACR122U"}]}})
    assert cfg.chip.address == 248 and cfg.chip.timeout == 2.0
    assert (cfg.mqtt.keepalive, cfg.mqtt.will_delay, cfg.mqtt.port) == (5, 0, 8883)
    assert cfg.cards.slots[0].slot == "1"
    usb = parse_config({**base(), "cards": {"usb_mount": "/media/smartmeter", "usb_poll": "500ms"}}).cards
    assert (usb.usb_mount, usb.usb_poll) == (Path("/media/smartmeter"), timedelta(milliseconds=500))


def test_the_example_shows_the_declared_defaults():
    """config/meter.example.toml shows the defaults the classes declare, where it shows a value."""
    import tomllib

    from appliance import config as schema

    shown = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    declared = {"meter": schema.MeterSection(id="X"), "chip": schema.ChipSection(), "mqtt": schema.MqttSection(),
                "confirmation": schema.ConfirmationSection(), "breaker": schema.BreakerSection(), "supply": schema.SupplySection()}
    checked = 0
    for section, defaults in declared.items():
        for key, value in shown.get(section, {}).items():
            if key in ("id", "serial", "store", "journal"):  # the example's own meter and paths
                continue
            want = getattr(defaults, key)
            got = schema.parse_duration(value, key) if isinstance(want, timedelta) else value
            assert got == want, f"{section}.{key}: the example shows {value!r}, the default is {want!r}"
            checked += 1
    assert checked >= 8


def _toml(raw: dict) -> str:
    lines = []
    for section, table in raw.items():
        lines.append(f"[{section}]")
        for k, v in table.items():
            if isinstance(v, list):
                continue
            lines.append(f"{k} = {_value(v)}")
        for k, v in table.items():
            if isinstance(v, list):
                for entry in v:
                    lines.append(f"[[{section}.{k}]]")
                    lines += [f"{ek} = {_value(ev)}" for ek, ev in entry.items()]
    return "\n".join(lines) + "\n"


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v) if isinstance(v, str) else str(v)
