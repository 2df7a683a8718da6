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
        ({**base(), "chip": {"baud": "fast"}}, "chip.baud", "expected int"),
        ({**base(), "mqtt": {"port": 70000}}, "mqtt.port", "1-65535"),
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
