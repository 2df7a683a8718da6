"""Contract change data on a USB medium (JP5159864B2, a variation of embodiment 1: a storage medium
instead of a card).

The company hands the household a USB stick holding its signed document as a ``*.cose`` file (the
COSE_Sign1 bytes a card's NDEF record carries, nothing around them). The meter's automounter mounts
the stick under a directory (``cards.usb_mount``, e.g. ``/media/smartmeter``, the stick itself or
its label's folder one level below); :class:`UsbMedium` polls that directory and hands each new file
to the core through the same :class:`~appliance.card_events.CardCallbacks` as a card slot, so it is
verified by the same checks and a refusal raises the same alert.

* A file is taken once: its SHA-256 is remembered (in a small JSON file, so a stick left in across a
  restart is not read again); a copy of the same document under another name is the same file.
* A file is taken only when its size and time stood still for one poll (not while being copied).
* At most :data:`MAX_FILE` bytes are read (a document is well under 4 KiB); a larger file is
  refused as unreadable. Other files, hidden files and deeper folders are ignored.

Polling needs nothing from the kernel and works on every automounter; a poll every two seconds costs
one ``scandir`` of a directory that is usually empty.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

from appliance.card_events import CardCallbacks, CardReadError
from appliance.trust.cose import MAX_ENVELOPE_BYTES

log = logging.getLogger(__name__)

MAX_FILE = MAX_ENVELOPE_BYTES
SUFFIX = ".cose"
KEPT_DIGESTS = 1000  # the newest digests remembered; an older document is refused as a replay anyway


class TakenFiles:
    """The digests of the files already taken, kept in a JSON list (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text())
            self.digests: list[str] = [d for d in loaded if isinstance(d, str)] if isinstance(loaded, list) else []
        except (OSError, ValueError):
            self.digests = []

    def __contains__(self, digest: str) -> bool:
        return digest in self.digests

    def add(self, digest: str) -> None:
        self.digests = (self.digests + [digest])[-KEPT_DIGESTS:]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.digests))
        os.replace(tmp, self.path)


class UsbMedium:
    """A card slot named ``slot`` whose "cards" are ``*.cose`` files under ``mount``."""

    def __init__(self, slot: str, mount: Path, callbacks: CardCallbacks, taken: Path, *, poll: float = 2.0) -> None:
        self.slot, self.mount, self.callbacks, self.poll = slot, Path(mount), callbacks, poll
        self.taken = TakenFiles(taken)
        self._sizes: dict[Path, tuple[int, int]] = {}  # size and mtime at the last poll
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "UsbMedium":
        self._thread = threading.Thread(target=self._run, name=f"usb-medium-{self.slot}", daemon=True)
        self._thread.start()
        log.info("USB medium %s: watching %s for *%s files every %.1f s", self.slot, self.mount, SUFFIX, self.poll)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan()
            except Exception:
                log.exception("USB medium %s: scanning %s failed; trying again", self.slot, self.mount)
            self._stop.wait(self.poll)

    def scan(self) -> int:
        """One poll: hand over every new, settled document file; returns how many were handed over."""
        found = self._candidates()
        for gone in set(self._sizes) - set(found):
            del self._sizes[gone]  # the stick was pulled: a file seen again later settles again
        handed = 0
        for path, stamp in found.items():
            settled = self._sizes.get(path) == stamp
            self._sizes[path] = stamp
            if settled and self._take(path, stamp[0]):
                handed += 1
        return handed

    def _candidates(self) -> dict[Path, tuple[int, int]]:
        out: dict[Path, tuple[int, int]] = {}
        for folder in [self.mount] + _subfolders(self.mount):
            for entry in _entries(folder):
                if entry.name.startswith(".") or not entry.name.lower().endswith(SUFFIX):
                    continue
                try:
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        out[Path(entry.path)] = (st.st_size, st.st_mtime_ns)
                except OSError:
                    continue  # pulled out while looking
        return out

    def _take(self, path: Path, size: int) -> bool:
        if size > MAX_FILE:
            key = f"oversize:{path}:{size}"
            if key not in self.taken:
                self.taken.add(key)
                self.callbacks.safely("on_error", self.slot, CardReadError(
                    f"{path.name}: {size} bytes is not a contract document (at most {MAX_FILE})"))
            return False
        try:
            with path.open("rb") as f:
                raw = f.read(MAX_FILE + 1)
        except OSError as exc:
            log.warning("USB medium %s: cannot read %s: %s", self.slot, path, exc.strerror)
            return False
        digest = hashlib.sha256(raw).hexdigest()
        if digest in self.taken:
            return False
        self.taken.add(digest)  # before handing over: a crash in between never reads it twice
        log.info("USB medium %s: taking %s (%d bytes)", self.slot, path.name, len(raw))
        self.callbacks.safely("on_document", self.slot, raw)
        return True


def _subfolders(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _entries(folder) if not e.name.startswith(".") and _is_dir(e)]


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _entries(folder: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []  # nothing mounted (the folder is absent or the stick was pulled)
