"""The Pi's package list holds nothing for tests or emulation (virtual card readers listen on every
network interface; a test database or a virtual display has no place on a meter)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEVELOPMENT_ONLY = {"vsmartcard-vpcd", "xvfb", "postgresql", "socat", "xclip", "mosquitto-clients"}


def packages(name: str) -> set[str]:
    lines = (ROOT / "scripts" / name).read_text().splitlines()
    return {line.split("#")[0].strip() for line in lines} - {""}


def test_the_pi_installs_no_development_package():
    runtime, dev = packages("apt-runtime.txt"), packages("apt-dev.txt")
    assert not runtime & DEVELOPMENT_ONLY
    assert DEVELOPMENT_ONLY <= dev and not runtime & dev
