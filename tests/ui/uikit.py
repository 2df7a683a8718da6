"""Running UI scenarios (tests/ui/scenario.py), each in its own process under the session's Xvfb,
beside one emulated system (``python -m smartmeter.emulation``) that they attach to in turn, as the
kiosk attaches to a meter. A later scenario sees what an earlier one left in the meter."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from smartmeter.attach import EmulationProcess

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots" / "ui"


def run_scenarios(display: str, names: list[str], tmp: Path, size: str = "800x480", timeout: float = 150) -> dict:
    """Start an emulated system, run each scenario against it in order, stop it; return all checks."""
    out: dict = {}
    with EmulationProcess(tmp / "system", interval="1s", nfc=False) as system:
        for name in names:
            out.update(_run_one(display, name, tmp, system.workdir, size, timeout))
    return out


def kivy_env(display: str, tmp: Path) -> dict[str, str]:
    """The environment of a Kivy process under the session's Xvfb: no argv parsing, no console log,
    its own Kivy home."""
    return {**os.environ, "DISPLAY": display, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1",
            "KIVY_HOME": str(tmp / "kivy-home")}


def _run_one(display: str, name: str, tmp: Path, workdir: Path, size: str, timeout: float) -> dict:
    results = tmp / f"{name}-{size}.json"
    env = kivy_env(display, tmp)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ui" / "scenario.py"), name, "--out", str(SCREENSHOTS),
                           "--results", str(results), "--attach", str(workdir), "--size", size],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if not results.exists():
        pytest.fail(f"scenario {name} wrote no results (rc {proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
    out = json.loads(results.read_text())
    out[f"_log:{name}"] = {"ok": True, "detail": proc.stderr[-3000:]}
    out["_log"] = out[f"_log:{name}"]
    return out
