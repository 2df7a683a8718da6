"""The core stays free of hardware and UI: drivers and the UI plug into it, never the reverse."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "appliance": {"pymodbus", "serial", "gpiozero", "smartcard", "nfc", "ndef", "kivy", "drivers", "ui",
                  "smartmeter", "cloud"},
    "drivers": {"kivy", "ui", "cloud", "smartmeter"},
    "cloud": {"pymodbus", "gpiozero", "smartcard", "nfc", "kivy", "drivers", "ui"},
}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_what_their_layer_allows(package):
    offenders = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imports_of(path) & FORBIDDEN[package]
        if bad:
            offenders[str(path.relative_to(ROOT))] = sorted(bad)
    assert offenders == {}
