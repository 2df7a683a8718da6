"""scripts/install-pi without a Pi: its --dry-run on a machine that has nothing yet (dpkg-query and
getent stubbed to know no package, group or user) prints every change it would make. The whole
install in a bookworm tree is scripts/check-install (docs/operations.md, "Checking the installer")."""
from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / "scripts" / "install-pi"


def listed(name: str) -> list[str]:
    lines = (ROOT / "scripts" / name).read_text().splitlines()
    return [p for p in (line.split("#")[0].strip() for line in lines) if p]


@pytest.fixture
def bare_machine(tmp_path) -> dict[str, str]:
    """PATH with dpkg-query and getent that know nothing: a fresh Raspberry Pi OS as far as the script can tell."""
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool, status in (("dpkg-query", 1), ("getent", 2)):
        (stubs / tool).write_text(f"#!/bin/sh\nexit {status}\n")
        (stubs / tool).chmod(0o755)
    return {"PATH": f"{stubs}:/usr/bin:/bin"}


def dry_run(env: dict[str, str], *args: str) -> list[list[str]]:
    out = subprocess.run(["bash", str(INSTALL), "--dry-run", *args], capture_output=True, text=True, env=env, check=False,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [shlex.split(line[2:]) for line in out.stdout.splitlines() if line.startswith("+ ")]


def test_the_scripts_parse():
    for script in ("install-pi", "check-install", "bootstrap"):
        subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True)


def test_a_first_install_with_the_screen(bare_machine):
    commands = dry_run(bare_machine)
    apt = next(c for c in commands if "install" in c and c[:2] == ["env", "DEBIAN_FRONTEND=noninteractive"])
    assert set(apt[apt.index("--no-install-recommends") + 1:]) == set(listed("apt-runtime.txt") + listed("apt-build.txt"))
    purge = next(c for c in commands if "purge" in c)
    assert purge[purge.index("--auto-remove") + 1:] == listed("apt-build.txt")
    assert not {w for c in commands for w in c} & set(listed("apt-dev.txt")), "a development package"
    for group in ("gpio", "dialout", "plugdev", "video", "render", "input"):
        assert ["groupadd", "--system", group] in commands
    useradd = next(c for c in commands if c[0] == "useradd")
    assert useradd[-1] == "smartmeter" and "--system" in useradd and "/usr/sbin/nologin" in useradd
    assert ["usermod", "--append", "--groups", "gpio,dialout,plugdev,video,render,input", "smartmeter"] in commands
    assert ["install", "-d", "-m", "0750", "-o", "root", "-g", "smartmeter", "/etc/smartmeter"] in commands
    assert ["install", "-d", "-m", "0750", "-o", "smartmeter", "-g", "smartmeter", "/var/lib/smartmeter"] in commands
    pip = next(c for c in commands if c[-1].startswith(str(ROOT) + "["))
    assert pip[-1] == f"{ROOT}[ui]" and ["-c", f"{ROOT}/constraints.txt"] == pip[pip.index("-c"):pip.index("-c") + 2]
    assert ["install", "-m", "0640", "-o", "root", "-g", "smartmeter", f"{ROOT}/config/meter.example.toml",
            "/etc/smartmeter/meter.toml"] in commands
    assert ["systemctl", "enable", "smartmeter-meter.service", "smartmeter-ui.service"] in commands
    assert not any(c[:2] == ["systemctl", "restart"] for c in commands), "a first install waits for the config"


def test_a_meter_without_the_screen(bare_machine):
    commands = dry_run(bare_machine, "--no-ui")
    assert next(c for c in commands if c[-1].startswith(str(ROOT) + "["))[-1] == f"{ROOT}[meter]"
    assert ["systemctl", "enable", "smartmeter-meter.service"] in commands
    assert ["usermod", "--append", "--groups", "gpio,dialout,plugdev", "smartmeter"] in commands
    assert not any("ui.toml" in w for c in commands for w in c)


def test_unknown_options_are_refused(bare_machine):
    out = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True, env=bare_machine,
                         check=False)
    assert out.returncode == 2 and "usage:" in out.stderr
