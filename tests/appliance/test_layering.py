"""The layers import only downwards: the core stays free of hardware, UI and cloud; drivers, the UI
and the cloud handlers never reach back into the composition root; development helpers stay out of
what a meter or a cloud handler runs. docs/architecture.md shows the same rules as a tree."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

HARDWARE = {"pymodbus", "serial", "gpiozero", "smartcard", "nfc", "ndef"}
# package -> top-level names its modules must never import
FORBIDDEN = {
    "appliance": HARDWARE | {"kivy", "drivers", "ui", "cloud", "smartmeter", "devkit", "psycopg", "aiosmtpd"},
    "drivers": {"kivy", "ui", "cloud", "smartmeter", "devkit"},
    "ui": HARDWARE | {"drivers", "cloud", "smartmeter", "devkit"},
    "cloud": HARDWARE | {"kivy", "drivers", "ui", "smartmeter", "devkit"},
    "devkit": {"smartmeter", "ui", "kivy"},
}
# The emulators that start a development pcscd when none runs may import devkit, inside a function.
DEVKIT_AT_CALL_TIME = {"drivers/cards/sim.py"}
# smartmeter's modules that are development tools (emulation, demo, benchmarks) may import devkit.
SMARTMETER_DEV = ("smartmeter/emulation.py", "smartmeter/attach.py", "smartmeter/control.py", "smartmeter/demo.py",
                  "smartmeter/demo_web.py", "smartmeter/demo_view.py",
                  "smartmeter/bench/")


def imports_of(path: Path, *, module_level_only: bool = False) -> set[str]:
    """Top-level package names imported by ``path`` (absolute imports; relative ones stay inside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if module_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def offenders(package: str, forbidden: set[str]) -> dict[str, list[str]]:
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        bad = imports_of(path) & forbidden
        if rel in DEVKIT_AT_CALL_TIME:
            bad = (bad - {"devkit"}) | (imports_of(path, module_level_only=True) & forbidden)
        if bad:
            out[rel] = sorted(bad)
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_their_layer_allows(package):
    assert offenders(package, FORBIDDEN[package]) == {}


def test_only_development_tools_in_smartmeter_import_devkit():
    bad = {}
    for path in sorted((ROOT / "smartmeter").rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        if not rel.startswith(SMARTMETER_DEV) and "devkit" in imports_of(path):
            bad[rel] = "imports devkit"
    assert bad == {}


def test_the_rule_catches_a_planted_wrong_import(tmp_path, monkeypatch):
    """A planted ``from smartmeter...`` in ui/ and a ``ui`` import in appliance/ are both reported."""
    for package, line in (("ui", "from smartmeter.attach import attach\n"), ("appliance", "import ui.model\n"),
                          ("cloud", "from devkit.mosquitto import LocalMosquitto\n")):
        fake = tmp_path / package
        fake.mkdir()
        (fake / "planted.py").write_text(line)
        monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
        assert offenders(package, FORBIDDEN[package]) == {f"{package}/planted.py": [line.split()[1].split(".")[0]]}


def test_running_a_meter_loads_no_development_or_ui_code():
    """What ``smartmeter appliance run`` and the kiosk's entry import: no devkit, no Kivy, no cloud database."""
    code = ("import sys; from smartmeter.cli import build_parser; build_parser(); "
            "import smartmeter.assembly, smartmeter.service, smartmeter.kiosk; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'devkit', 'kivy', 'psycopg', 'aiosmtpd'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_meter_service_is_assembled_in_one_place():
    """``MeterService(`` is constructed only by the composition root (and the core's own tests)."""
    places = []
    for package in ("appliance", "drivers", "ui", "cloud", "smartmeter", "devkit", "tests"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "MeterService":
                    places.append(str(path.relative_to(ROOT)))
    assert places == ["smartmeter/assembly.py"]
