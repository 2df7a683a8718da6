"""Contract change data on a USB medium: signed *.cose files under a mount directory (a temp dir here)
take the card's path into the core, each file once; refusals raise the card's alert."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from cardkit import METER, NOW

from appliance.api import MeterAPI
from appliance.card_events import CardCallbacks
from appliance.clock import ManualClock
from appliance.documents import DocumentIntake
from appliance.store import Store
from drivers.cards.usb import MAX_FILE, UsbMedium


@pytest.fixture
def medium(tmp_path, pki):
    store = Store(tmp_path / "meter.sqlite3")
    intake = DocumentIntake(MeterAPI(store, METER, timedelta(minutes=30), ManualClock(NOW)), pki.root_public)
    mount = tmp_path / "media" / "smartmeter"
    callbacks = CardCallbacks(on_document=intake.on_medium_document, on_error=intake.on_medium_error)

    def make() -> UsbMedium:  # a fresh watcher on the same files: a restart
        return UsbMedium("usb", mount, callbacks, tmp_path / "usb-taken.json", poll=0.05)

    yield mount, make, store
    store.close()


def settle(watcher: UsbMedium) -> int:
    """Two polls: a file is taken once it stood still for one."""
    return watcher.scan() + watcher.scan()


def test_a_signed_file_on_the_stick_is_stored_once_even_across_a_restart(medium, pki):
    mount, make, store = medium
    watcher = make()
    assert settle(watcher) == 0  # nothing mounted yet: no error, nothing taken
    (mount / "STICK").mkdir(parents=True)  # the automounter's folder for the stick's label
    (mount / "STICK" / "chugoku.cose").write_bytes(pki.sign(serial=20))
    (mount / "STICK" / "readme.txt").write_text("not a document")
    assert watcher.scan() == 0  # just appeared: maybe still being copied
    assert watcher.scan() == 1
    (change, _book), = store.changes()
    assert change.source == "usb:usb" and change.serial == 20 and change.company.code == "CHUGOKU-EP"
    (mount / "STICK" / "copy.cose").write_bytes((mount / "STICK" / "chugoku.cose").read_bytes())
    assert settle(watcher) == 0  # the same document under another name is the same file
    assert settle(make()) == 0  # a restart with the stick still in reads nothing again
    assert len(store.changes()) == 1 and store.alerts() == []


def test_refused_and_oversized_files_raise_the_card_alert_once(medium, pki):
    mount, make, store = medium
    mount.mkdir(parents=True)
    (mount / "forged.cose").write_bytes(pki.sign(company=pki.rogue, serial=30))
    (mount / "huge.cose").write_bytes(b"\0" * (MAX_FILE + 1))
    watcher = make()
    settle(watcher)
    settle(watcher)
    assert store.changes() == []
    alerts = sorted((a["kind"], a["detail"]["code"], a["count"]) for a in store.alerts())
    assert alerts == [("card_rejected", "read_failed", 1), ("card_rejected", "untrusted_certificate", 1)]
    assert all("USBメモリの契約データ" in a["message_ja"] for a in store.alerts())


def test_the_thread_watches_the_mount_and_stops(medium, pki):
    mount, make, store = medium
    watcher = make().start()
    try:
        mount.mkdir(parents=True)
        tmp = mount / ".partial"
        tmp.write_bytes(pki.sign(serial=40))
        os.replace(tmp, mount / "doc.cose")
        for _ in range(200):
            if store.changes():
                break
            watcher._stop.wait(0.02)
        assert [c.serial for c, _ in store.changes()] == [40]
    finally:
        watcher.stop()
    assert not watcher._thread.is_alive()
