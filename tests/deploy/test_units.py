"""The systemd units: each passes `systemd-analyze verify` and scores 4.0 or lower (the goal) on
`systemd-analyze security`'s exposure scale. Scores are recorded in docs/operations.md."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "deploy").glob("*.service"))
INSTALLED = "/opt/smartmeter/.venv/bin/smartmeter"


@pytest.fixture(scope="module")
def analyze():
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is not installed (Debian: systemd)")
    return tool


def local_copy(unit: Path, tmp_path: Path) -> Path:
    """The unit as installed here: ExecStart pointing at this checkout's console script."""
    here = Path(sys.executable).with_name("smartmeter")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(here)))
    return copy


def test_there_is_a_unit_for_the_meter_the_screen_and_each_cloud_handler():
    assert {u.stem for u in UNITS} >= {"smartmeter-meter", "smartmeter-ui", "smartmeter-collector",
                                       "smartmeter-manager", "smartmeter-notifier"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.stem)
def test_unit_verifies(unit, analyze, tmp_path):
    out = subprocess.run([analyze, "verify", str(local_copy(unit, tmp_path))], capture_output=True, text=True,
                         timeout=60)
    # verify's exit status covers only the command; a key it ignores ("Unknown key", "Failed to parse")
    # is a warning line, so any line at all is a fault
    assert out.returncode == 0 and not (out.stdout + out.stderr).strip(), out.stdout + out.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.stem)
def test_unit_runs_unprivileged_and_scores_at_most_4(unit, analyze):
    text = unit.read_text()
    assert re.search(r"^User=smartmeter$", text, re.M) and "NoNewPrivileges=yes" in text
    out = subprocess.run([analyze, "security", "--offline=true", str(unit)], capture_output=True, text=True,
                         timeout=60)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout)
    assert score, out.stdout[-2000:] + out.stderr
    assert float(score.group(1)) <= 4.0, out.stdout[-3000:]
