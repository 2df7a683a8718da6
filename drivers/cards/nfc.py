"""An NFC card slot read with nfcpy: a USB/serial reader on the Pi, or ``udp`` in emulation.

Device paths are nfcpy's: ``usb`` (first USB reader: Sony RC-S380, ACR122U, ...),
``usb:054c:06c3`` (by vendor:product), ``tty:AMA0:pn532`` or ``tty:S0:pn532`` (a PN532 on the Pi's
UART), ``udp:localhost:54321`` (emulation). The slot reads the NDEF message of any tag type nfcpy
supports (FeliCa Type 3 is the common case in Japan) and reports through :class:`CardCallbacks`.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

import nfc
import nfc.clf

from appliance.card_events import CardCallbacks, CardReadError, ReadStats
from appliance.trust.rejections import DocumentRejected

from .ndef import NotAContractCard, document_from_message

log = logging.getLogger(__name__)

ALL_TARGETS = ("106A", "106B", "212F")
FELICA_ONLY = ("212F",)


class NfcSlot:
    """One nfcpy reader as one card slot."""

    def __init__(self, slot: str, device: str, callbacks: CardCallbacks, *,
                 targets: tuple[str, ...] | None = None) -> None:
        self.slot = slot
        self.device = device
        self.callbacks = callbacks
        self.targets = targets or (FELICA_ONLY if device.startswith("udp") else ALL_TARGETS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.opened = threading.Event()

    def start(self) -> "NfcSlot":
        self._thread = threading.Thread(target=self._run, name=f"nfc-slot-{self.slot}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "NfcSlot":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            clf = nfc.ContactlessFrontend()
            try:
                if not clf.open(self.device):
                    log.warning("slot %s: no NFC reader at %s; retrying", self.slot, self.device)
                    self._stop.wait(2.0)
                    continue
            except OSError as exc:
                log.warning("slot %s: cannot open %s (%s); retrying", self.slot, self.device, exc)
                self._stop.wait(2.0)
                continue
            self.opened.set()
            try:
                while not self._stop.is_set():
                    clf.connect(rdwr=self._options(), terminate=self._stop.is_set)
            finally:
                clf.close()

    def _options(self) -> dict[str, Any]:
        return {
            "targets": list(self.targets),
            "on-connect": self._on_connect,
            "on-release": self._on_release,
            "beep-on-connect": False,
            "interval": 0.1,
            "iterations": 1,
        }

    def _on_connect(self, tag: Any) -> bool:
        started = time.perf_counter()
        self.callbacks.safely("on_inserted", self.slot)
        try:
            message = read_tag(tag)
            document = document_from_message(message)
        except (CardReadError, DocumentRejected) as exc:
            log.info("slot %s: %s", self.slot, exc)
            self.callbacks.safely("on_error", self.slot, exc)
        else:
            self.callbacks.safely("on_stats", self.slot, ReadStats(total_seconds=time.perf_counter() - started))
            self.callbacks.safely("on_document", self.slot, document)
        return True  # wait until the tag leaves, then on-release

    def _on_release(self, _tag: Any) -> bool:
        self.callbacks.safely("on_removed", self.slot)
        return True


def read_tag(tag: Any) -> bytes:
    """The whole NDEF message of an activated nfcpy tag, or why it could not be had."""
    try:
        ndef = tag.ndef
        octets = bytes(ndef.octets) if ndef is not None else None
    except Exception as exc:  # nfcpy raises many types when a tag leaves mid-read
        log.debug("reading %s failed: %r", tag, exc)
        octets = None
    if octets is None:
        if not _present(tag):
            raise CardReadError("the card was removed during reading")
        raise NotAContractCard(f"the {getattr(tag, 'type', 'NFC')} tag holds no readable NDEF message")
    if not octets:
        raise NotAContractCard("the tag is blank (empty NDEF message)")
    return octets


def _present(tag: Any) -> bool:
    try:
        return bool(tag.is_present)
    except Exception:
        return False


def read_once(device: str, timeout: float = 5.0, targets: tuple[str, ...] | None = None) -> bytes:
    """Read one tag from ``device`` (for ``smartmeter card read --nfc``)."""
    targets = targets or (FELICA_ONLY if device.startswith("udp") else ALL_TARGETS)
    deadline = time.monotonic() + timeout
    clf = nfc.ContactlessFrontend()
    if not clf.open(device):
        raise CardReadError(f"no NFC reader at {device}")
    result: dict[str, Any] = {}

    def on_connect(tag: Any) -> bool:
        try:
            result["message"] = read_tag(tag)
        except (CardReadError, DocumentRejected) as exc:
            result["error"] = exc
        return False

    try:
        clf.connect(rdwr={"targets": list(targets), "on-connect": on_connect, "beep-on-connect": False,
                          "interval": 0.1, "iterations": 1},
                    terminate=lambda: bool(result) or time.monotonic() > deadline)
    finally:
        clf.close()
    if "error" in result:
        raise result["error"]
    if "message" not in result:
        raise CardReadError(f"no tag on {device} within {timeout:g} s")
    return result["message"]
