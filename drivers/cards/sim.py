"""The card emulator daemon behind ``smartmeter sim card insert|remove --slot N FILE``.

Slots, as on the meter's front panel (Fig. 9(a) has three card slots; the fourth is a tap area):

==== ================================ =========================================
slot reader the meter sees             the emulated card
==== ================================ =========================================
1    PC/SC ``Virtual PCD 00 00``      Type 4 card on vpcd TCP 35963
2    PC/SC ``Virtual PCD 00 01``      Type 4 card on vpcd TCP 35964
3    PC/SC ``Virtual PCD 2 00 00``    Type 4 card on vpcd TCP 35965
4    nfcpy ``udp:localhost:54321``    FeliCa Type 3 tag (nfcpy udp, port 54321)
==== ================================ =========================================

One daemon holds the cards so that insert and remove can come from separate commands. It
listens on a Unix socket (owner-only) and speaks one JSON object per line each way.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.card_events import CardReadError

from .ndef import card_message
from .virtual_tag import NFC_UDP_PORT
from .vpcd import EMULATION_SLOTS

log = logging.getLogger(__name__)

COSE_SIGN1_PREFIX = b"\xd2\x84"  # CBOR tag 18 + 4-element array: a bare signed document, not NDEF


@dataclass(frozen=True)
class SimSlot:
    slot: str
    kind: str  # "pcsc" | "nfc"
    port: int
    reader: str  # what the meter's reader sees: a PC/SC reader name or an nfcpy device path


SIM_SLOTS: dict[str, SimSlot] = {
    **{s.slot: SimSlot(s.slot, "pcsc", s.port, s.reader) for s in EMULATION_SLOTS},
    "4": SimSlot("4", "nfc", NFC_UDP_PORT, f"udp:localhost:{NFC_UDP_PORT}"),
}


def default_socket() -> Path:
    return Path(os.environ.get("SMARTMETER_CARD_SIM_SOCKET", Path(tempfile.gettempdir()) / "smartmeter-card-sim.sock"))


def card_image(data: bytes) -> bytes:
    """The NDEF message a file stands for: a signed document is wrapped; anything else is served as is
    (so a test can insert a foreign or damaged card)."""
    return card_message(data) if data.startswith(COSE_SIGN1_PREFIX) else data


class CardSimulator:
    """Inserts and removes emulated cards in the emulation slots."""

    def __init__(self, slots: dict[str, SimSlot] | None = None) -> None:
        self.slots = slots or SIM_SLOTS
        self.cards: dict[str, Any] = {}
        self.images: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def insert(self, slot: str, image: bytes, pull_after: int | None = None) -> dict[str, Any]:
        spec = self._spec(slot)
        with self.lock:
            self._remove(slot)
            card = self._make(spec, image, pull_after)
            card.insert()
            self.cards[slot], self.images[slot] = card, image
        log.info("card inserted in slot %s (%d-byte NDEF message)", slot, len(image))
        return {"slot": slot, "bytes": len(image), "reader": spec.reader}

    def remove(self, slot: str) -> dict[str, Any]:
        self._spec(slot)
        with self.lock:
            had = self._remove(slot)
        return {"slot": slot, "removed": had}

    def status(self) -> dict[str, Any]:
        with self.lock:
            return {s: {"kind": spec.kind, "reader": spec.reader, "port": spec.port,
                        "card_bytes": len(self.images[s]) if s in self.cards else None}
                    for s, spec in self.slots.items()}

    def image(self, slot: str) -> bytes | None:
        """The NDEF message in the slot now (a company may have written the card through its reader)."""
        with self.lock:
            card = self.cards.get(slot)
            if card is not None and hasattr(card, "image"):
                self.images[slot] = card.message  # a FeliCa tag keeps its memory in its own process
            return self.images.get(slot)

    def close(self) -> None:
        with self.lock:
            for slot in list(self.cards):
                self._remove(slot)

    def _spec(self, slot: str) -> SimSlot:
        if slot not in self.slots:
            raise CardReadError(f"there is no slot {slot} (slots: {', '.join(self.slots)})")
        return self.slots[slot]

    def _make(self, spec: SimSlot, image: bytes, pull_after: int | None) -> Any:
        def written(message: bytes, slot: str = spec.slot) -> None:
            self.images[slot] = message  # a company wrote the card through the reader

        if spec.kind == "pcsc":
            from .virtual_card import VirtualType4Card

            return VirtualType4Card(image, port=spec.port, pull_after=pull_after, on_write=written)
        from .virtual_tag import VirtualFelicaTag

        return VirtualFelicaTag(image, port=spec.port, pull_after=pull_after)

    def _remove(self, slot: str) -> bool:
        card = self.cards.pop(slot, None)
        self.images.pop(slot, None)
        if card is None:
            return False
        card.remove()
        log.info("card removed from slot %s", slot)
        return True


# --- control socket ---

class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        for line in self.rfile:
            try:
                reply = {"ok": True, **server.dispatch(json.loads(line))}
            except CardReadError as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:  # a bad request must not stop the daemon
                log.exception("bad request")
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            if server.stopping.is_set():
                return


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, sim: CardSimulator) -> None:
        self.sim = sim
        self.stopping = threading.Event()
        super().__init__(str(path), _Handler)

    def dispatch(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        if op == "insert":
            return self.sim.insert(str(req["slot"]), base64.b64decode(req["image"]), req.get("pull_after"))
        if op == "remove":
            return self.sim.remove(str(req["slot"]))
        if op == "status":
            return {"slots": self.sim.status()}
        if op == "image":
            image = self.sim.image(str(req["slot"]))
            return {"image": base64.b64encode(image).decode() if image is not None else None}
        if op == "stop":
            self.stopping.set()
            threading.Thread(target=self.shutdown, daemon=True).start()
            return {"stopping": True}
        raise CardReadError(f"unknown request {op!r}")


def serve(path: Path, *, start_pcscd: bool = True) -> None:
    """Run the daemon until ``stop`` or a signal. Starts pcscd (with the three vpcd slots) if none runs."""
    # The emulator's own pcscd with the virtual readers: a development tool, never on a meter.
    from devkit.pcscd import Pcscd, missing_prerequisites, offered_readers

    missing = missing_prerequisites()
    if missing:
        raise CardReadError("; ".join(missing))
    pcscd = None
    if start_pcscd and offered_readers() is None:
        pcscd = Pcscd(Path(tempfile.mkdtemp(prefix="smartmeter-pcscd-"))).start()
        log.info("started pcscd (pid %s) with slots 1-3", pcscd.pid)
    if path.exists():
        path.unlink()
    sim = CardSimulator()
    old_umask = os.umask(0o077)  # owner-only socket: inserting a card is a privileged act
    try:
        server = _Server(path, sim)
    finally:
        os.umask(old_umask)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
    try:
        log.info("card emulator listening on %s", path)
        server.serve_forever()
    finally:
        server.server_close()
        sim.close()
        path.unlink(missing_ok=True)
        if pcscd is not None:
            pcscd.stop()


def request(path: Path, req: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(req).encode() + b"\n")
        reply = json.loads(sock.makefile("rb").readline())
    if not reply.pop("ok", False):
        raise CardReadError(reply.get("error", "the card emulator refused"))
    return reply


def running(path: Path) -> bool:
    try:
        request(path, {"op": "status"}, timeout=2.0)
        return True
    except (OSError, ValueError, CardReadError):
        return False


def ensure_daemon(path: Path, timeout: float = 15.0) -> None:
    """Start the daemon in the background if none answers on ``path``."""
    if running(path):
        return
    log_path = path.with_suffix(".log")
    with open(log_path, "ab") as log_file:
        subprocess.Popen([sys.executable, "-m", "drivers.cards.sim", "serve", "--socket", str(path)],
                         stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         start_new_session=True, cwd=str(Path(__file__).resolve().parents[2]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running(path):
            return
        time.sleep(0.1)
    raise CardReadError(f"the card emulator did not start; see {log_path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.cards.sim", description="card emulator daemon")
    parser.add_argument("command", choices=["serve"])
    parser.add_argument("--socket", type=Path, default=default_socket())
    parser.add_argument("--no-pcscd", action="store_true", help="do not start pcscd even if none runs")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(args.socket, start_pcscd=not args.no_pcscd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
