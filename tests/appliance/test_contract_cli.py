"""``smartmeter appliance contract``: the household's / installer's path into S801/S802, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def smartmeter(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smartmeter.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)


@pytest.fixture
def config(tmp_path) -> str:
    path = tmp_path / "meter.toml"
    path.write_text(f'[meter]\nid = "MTR-CLI"\nstore = "{tmp_path}/meter.sqlite3"\n')
    return str(path)


def listing(config: str) -> dict:
    res = smartmeter("appliance", "contract", "list", "--config", config, "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_store_list_and_cancel_changes(config):
    res = smartmeter("appliance", "contract", "add", "--config", config, "--kind", "supply", "--company", "ENEOS-P",
                     "--name", "ENEOSでんき", "--data-types", "time,energy", "--switch", "weekly:fri@18:00,mon@07:00")
    assert res.returncode == 0 and "stored change #1" in res.stdout
    res = smartmeter("appliance", "contract", "add", "--config", config, "--kind", "data", "--company", "HEMS-LAB",
                     "--data-types", "time,power", "--switch", "2099-01-01T00:00+09:00", "--send-interval", "1d",
                     "--measure-interval", "1h")
    assert res.returncode == 0, res.stderr
    pending = listing(config)["pending"]
    assert [(p["company"], p["switch"], p["measure_interval_s"]) for p in pending] == [
        ("ENEOS-P", "weekly fri 18:00, mon 07:00", None),
        ("HEMS-LAB", "2099-01-01 00:00 JST", 3600.0)]
    assert "HEMS-LAB         at 2099-01-01 00:00 JST  measured every 1 h" in smartmeter(
        "appliance", "contract", "list", "--config", config).stdout
    assert smartmeter("appliance", "contract", "cancel", "--config", config, "2").returncode == 0
    assert [p["company"] for p in listing(config)["pending"]] == ["ENEOS-P"]
    human = smartmeter("appliance", "contract", "list", "--config", config).stdout
    assert "ENEOS-P" in human and "weekly fri 18:00" in human


@pytest.mark.parametrize("args, message", [
    (["--data-types", "time,gossip", "--switch", "immediate"], "unknown data type 'gossip'"),
    (["--data-types", "time", "--switch", "2020-01-01T00:00+09:00"], "is in the past"),
    (["--data-types", "time", "--switch", "2099-01-01T00:00"], "no UTC offset"),
    (["--data-types", "time", "--switch", "weekly:someday@10:00"], "switch.weekly[0].day"),
    (["--data-types", "time", "--switch", "immediate", "--send-interval", "often"], "is not a duration"),
    (["--data-types", "time", "--switch", "immediate", "--measure-interval", "45m"], "not a multiple"),
    (["--data-types", "time", "--switch", "immediate", "--name", "N" * 20000], "field 'name' is 20000 characters"),
    (["--data-types", "time", "--switch", "immediate", "--name", "N" * 129], "more than 128"),
])
def test_bad_changes_get_one_clear_line_and_store_nothing(config, args, message):
    before = listing(config)
    res = smartmeter("appliance", "contract", "add", "--config", config, "--kind", "supply", "--company", "X", *args)
    assert res.returncode == 2
    assert res.stderr.startswith("smartmeter: error:") and message in res.stderr
    assert "Traceback" not in res.stderr
    assert listing(config) == before


@pytest.mark.parametrize("change_id", ["99999999999999999999999", "0", "-1", str(2**63)])
def test_a_change_id_out_of_range_gets_one_line(config, change_id):
    res = smartmeter("appliance", "contract", "cancel", "--config", config, change_id)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{change_id} is outside 1..{2**63 - 1}" in res.stderr.strip().splitlines()[-1]


def test_the_largest_change_id_is_a_plain_not_pending(config):
    res = smartmeter("appliance", "contract", "cancel", "--config", config, str(2**63 - 1))
    assert res.returncode == 2 and "is not pending" in res.stderr and "Traceback" not in res.stderr


def test_a_config_error_names_the_key(tmp_path):
    bad = tmp_path / "meter.toml"
    bad.write_text('[meter]\nid = "M"\nmeasurement_interval = "7m"\n')
    res = smartmeter("appliance", "contract", "list", "--config", str(bad))
    assert res.returncode == 2 and "meter.measurement_interval: must divide a day evenly" in res.stderr
