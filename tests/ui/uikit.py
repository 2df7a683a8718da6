"""Running one UI scenario (tests/ui/scenario.py) in its own process under the session's Xvfb."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


def run_scenario(display: str, name: str, tmp: Path, size: str = "800x480", timeout: float = 150) -> dict:
    """Run tests/ui/scenario.py NAME in its own process; return its checks."""
    results = tmp / f"{name}-{size}.json"
    env = {**os.environ, "DISPLAY": display, "KIVY_NO_ARGS": "1", "KIVY_NO_CONSOLELOG": "1",
           "KIVY_HOME": str(tmp / "kivy-home")}
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "ui" / "scenario.py"), name, "--out", str(SCREENSHOTS),
                           "--results", str(results), "--workdir", str(tmp / f"work-{name}-{size}"), "--size", size],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if not results.exists():
        pytest.fail(f"scenario {name} wrote no results (rc {proc.returncode}):\n{proc.stderr[-3000:]}", pytrace=False)
    out = json.loads(results.read_text())
    out["_log"] = {"ok": True, "detail": proc.stderr[-3000:]}
    return out
