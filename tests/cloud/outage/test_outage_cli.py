"""The commands, through the console script's own parser (smartmeter.cli)."""
from __future__ import annotations

import argparse
import subprocess
import sys
from datetime import timedelta

import pytest
from polling import wait_for as wait_until

from cloud.outage.collector import Collector, IntakeConfig
from cloud.outage.storage import open_storage
from smartmeter.cli import build_parser


def parser() -> argparse.ArgumentParser:
    return build_parser()


def run(*argv: str) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


@pytest.mark.parametrize("argv", [["cloud", "collector"], ["cloud", "manager"], ["cloud", "notifier"], ["sim", "fleet"],
                                  ["bench", "cloud"], ["cloud", "registrations", "import"],
                                  ["cloud", "dead-letters"]])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        parser().parse_args([*argv, "--help"])
    assert exc.value.code == 0 and "usage:" in capsys.readouterr().out


def test_import_and_simulated_fleet_through_a_collector(tmp_path, broker, capsys):
    from appliance.clock import SystemClock

    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert run("cloud", "registrations", "import", "--fleet", "120", "--area-size", "30", "--db", url) == 0
    storage = open_storage(url)
    assert storage.registration_count() == 120
    # the fleet's simulated clock runs ahead of the real one: as `cloud collector --clock-skew 1d` would
    c = Collector(storage, SystemClock(), flush_interval_s=0.05, intake=IntakeConfig(skew=timedelta(days=1)))
    c.start(broker.account("operator", "collector"))
    assert run("sim", "fleet", "--meters", "120", "--area-size", "30", "--windows", "2", "--clock", "simulated",
               "--scenario", "area-outage", "--spread", "0", "--batch", "--mqtt-config", str(broker.party_file("simulator", "fleet"))) == 0
    out = capsys.readouterr().out
    assert "windows 2" in out and "batched by concentrator" in out and "area outage" in out
    wait_until(lambda: c.stats.statuses >= 30 and c.stats.readings > 150, what="fleet traffic")
    c.stop()
    assert c.stats.malformed_total == 0 and 150 < c.stats.stored <= 240 - 30


def test_csv_import(tmp_path, capsys):
    path = tmp_path / "reg.csv"
    path.write_text("meter_id,customer_number,prefecture,city,district,concentrator_id,email,name,language,substation,feeder,section\n"
                    "A1,C1,広島県,広島市中区,基町,K1,a@example.jp,山田 太郎,ja,千田中央変電所,千田中央1号線,第2区間\n"
                    "A2,C2,広島県,広島市中区,基町,K1,,Smith,en,,,\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'o.db'}"
    assert run("cloud", "registrations", "import", str(path), "--db", url) == 0
    reg = open_storage(url).registration("A2")
    assert reg.email is None and reg.language.value == "en" and reg.area.key == "広島県/広島市中区/基町"
    assert reg.substation == "" and open_storage(url).registration("A1").section == "第2区間"  # optional columns


def test_console_script_dispatch_lists_the_commands():
    """Through the real entry point, in a process of its own."""
    out = subprocess.run([sys.executable, "-m", "smartmeter.cli", "sim", "fleet", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--scenario" in out.stdout
