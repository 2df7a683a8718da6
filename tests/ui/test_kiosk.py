"""The kiosk as systemd starts it (`smartmeter ui --config ui.toml`, fullscreen), on a meter's store,
reading its own PC/SC readers named in the config: a card inserted in a reader reaches the kiosk
through pcscd, is verified with the configured registry key and is kept in the meter's store.
A broken config stops the kiosk with a message that names the key."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from polling import wait_for
from uikit import kivy_env

from drivers.cards.vpcd import EMULATION_SLOTS
from smartmeter.attach import EmulationProcess, attach

ROOT = Path(__file__).resolve().parents[2]


def kiosk_config(tmp: Path, descriptor: dict, slots: dict[str, str]) -> Path:
    """/etc/smartmeter as an installer writes it: meter.toml, registry.pub and ui.toml."""
    etc = tmp / "etc"
    etc.mkdir()
    (etc / "registry.pub").write_bytes(bytes.fromhex(descriptor["registry_public_key"]))
    (etc / "meter.toml").write_text(f"""[meter]
id = "{descriptor['meter_id']}"
measurement_interval = "{int(descriptor['interval_s'])}s"
store = "{descriptor['store']}"
""")
    readers = "\n".join(f'"{reader}" = "{slot}"' for reader, slot in slots.items())
    (etc / "ui.toml").write_text(f"""[ui]
panel = "a"
meter_config = "meter.toml"
registry_key = "registry.pub"

[ui.readers]
{readers}
""")
    return etc / "ui.toml"


def test_kiosk_reads_its_configured_readers_into_the_meter(xvfb, tmp_path):
    with EmulationProcess(tmp_path / "system", interval="1s", nfc=False) as system:
        emu = attach(system.workdir)
        # the installer wired the vpcd readers to the front panel's slots 1-3
        config = kiosk_config(tmp_path, emu.descriptor, {s.reader: s.slot for s in EMULATION_SLOTS if s.slot != "4"})
        kiosk = subprocess.Popen([sys.executable, "-m", "smartmeter.cli", "ui", "--config", str(config),
                                  "--size", "800x480"], cwd=ROOT, env=kivy_env(xvfb, tmp_path),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            api = emu.api  # the meter's store, as a second reader of it
            time.sleep(3)  # the window is up and the readers are watched
            assert kiosk.poll() is None, kiosk.stdout.read()
            emu.control.insert_card("2", "eneos")
            wait_for(lambda: any(c.code == "ENEOS-P" for c in api.stored_cards()), 30,
                     "the kiosk to keep the card it read in the meter's store")
            emu.control.insert_card("1", "rogue")  # certified by a registry this meter does not trust
            time.sleep(3)
            assert {c.code for c in api.stored_cards()} == {"ENEOS-P"}
            assert kiosk.poll() is None
        finally:
            kiosk.send_signal(signal.SIGTERM)
            out = kiosk.communicate(timeout=20)[0]
            emu.close()
        assert "Traceback" not in out, out[-3000:]


def test_kiosk_refuses_a_broken_config_by_name(tmp_path):
    (tmp_path / "ui.toml").write_text('[ui]\npanel = "c"\n')
    proc = subprocess.run([sys.executable, "-m", "smartmeter.cli", "ui", "--config", str(tmp_path / "ui.toml")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "KIVY_NO_ARGS": "1", "DISPLAY": ""})
    assert proc.returncode != 0
    assert "ui.panel" in proc.stderr and "'c'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
