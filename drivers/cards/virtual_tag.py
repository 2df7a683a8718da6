"""A virtual FeliCa (NFC Forum Type 3) contract tag, emulated by nfcpy over its ``udp`` device.

nfcpy's ``udp`` driver carries the contactless frames between two nfcpy processes (or threads)
on localhost: the meter's reader polls ``udp:localhost:PORT`` and this emulated tag listens on
PORT. The tag answers Polling, Request Response and Read/Write Without Encryption through
nfcpy's own :class:`nfc.tag.tt3.Type3TagEmulation`, serving block 0 (attribute information,
with its checksum) and the NDEF data blocks of :func:`drivers.cards.ndef.type3_blocks`.

The tag runs as a second nfcpy instance in its own process: removing the tag ends the process,
so it falls silent at once, exactly as a card taken off a reader. (nfcpy's ``listen`` cannot be
interrupted from another thread, and a listen window that closes between the tag's polling
answer and the reader's next command would lose that command.)
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import nfc
import nfc.clf
import nfc.tag

from appliance.card_events import CardReadError

from .ndef import (
    T3T_NDEF_SERVICE_READ,
    T3T_NDEF_SERVICE_WRITE,
    T3T_SYSTEM_CODE,
    Type3Attributes,
    type3_blocks,
)

log = logging.getLogger(__name__)

# nfcpy's default udp port; a test run sets its own (devkit.isolation)
NFC_UDP_PORT = int(os.environ.get("SMARTMETER_NFC_UDP_PORT", "54321"))
IDM = bytes.fromhex("02FE001122334455")  # 02FE: a Type 3 tag's manufacturer code prefix for NDEF-capable cards
PMM = bytes.fromhex("03014B024F4993FF")


LISTEN_WINDOW = 30.0  # seconds per nfcpy listen; long, so a window rarely ends mid-activation


class VirtualFelicaTag:
    """One FeliCa tag on one ``udp`` port. ``pull_after`` answers that many block reads, then goes silent."""

    def __init__(self, message: bytes, *, port: int = NFC_UDP_PORT, pull_after: int | None = None) -> None:
        self.port = port
        self.pull_after = pull_after
        self._dir = Path(tempfile.mkdtemp(prefix="felica-tag-"))
        self.image = self._dir / "blocks.bin"  # the tag's memory; writes by a reader land here
        self.image.write_bytes(b"".join(type3_blocks(message)))
        self._process: subprocess.Popen[bytes] | None = None

    def insert(self, timeout: float = 10.0) -> "VirtualFelicaTag":
        cmd = [sys.executable, "-m", "drivers.cards.virtual_tag", "--port", str(self.port), "--image", str(self.image)]
        if self.pull_after is not None:
            cmd += ["--pull-after", str(self.pull_after)]
        self._process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                         cwd=str(Path(__file__).resolve().parents[2]))
        ready = threading.Event()
        threading.Thread(target=lambda: (self._process.stdout.readline(), ready.set()), daemon=True).start()
        if not ready.wait(timeout) or self._process.poll() is not None:
            self.remove()
            raise CardReadError(f"the emulated FeliCa tag on udp port {self.port} did not start")
        return self

    def remove(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stdout:
                self._process.stdout.close()
            self._process = None

    def __enter__(self) -> "VirtualFelicaTag":
        return self.insert()

    def __exit__(self, *_exc: object) -> None:
        self.remove()

    @property
    def message(self) -> bytes:
        """The NDEF message the tag holds now (after any write by a reader)."""
        data = self.image.read_bytes()
        attrs = Type3Attributes.from_block(data[:16])
        return data[16:16 + attrs.length]


class _TagProcess:
    """The emulation itself, run inside the tag's process."""

    def __init__(self, image: Path, port: int, pull_after: int | None, idm: bytes = IDM) -> None:
        self.image = image
        data = image.read_bytes()
        self.blocks = [bytearray(data[i:i + 16]) for i in range(0, len(data), 16)]
        self.device = f"udp:localhost:{port}"
        self.pull_after = pull_after
        self.idm = idm
        self.block_reads = 0

    def run(self) -> None:
        clf = nfc.ContactlessFrontend()
        if not clf.open(self.device):
            raise SystemExit(f"nfcpy could not open {self.device}")
        print("ready", flush=True)
        while True:
            activated = clf.listen(self._local_target(), LISTEN_WINDOW)
            if activated is None:
                continue
            tag = nfc.tag.emulate(clf, activated)
            if isinstance(tag, nfc.tag.TagEmulation):
                for service in (T3T_NDEF_SERVICE_READ, T3T_NDEF_SERVICE_WRITE):
                    tag.add_service(service, self._read_block, self._write_block)
                self._converse(tag)

    def _local_target(self) -> nfc.clf.LocalTarget:
        target = nfc.clf.LocalTarget("212F")
        target.sensf_res = bytearray([0x01]) + self.idm + PMM + T3T_SYSTEM_CODE.to_bytes(2, "big")
        return target

    def _converse(self, tag: nfc.tag.TagEmulation) -> None:
        """Answer the reader until it lets go (RF off)."""
        response = tag.process_command(tag.cmd)
        while True:
            try:
                command = tag.send_response(response, LISTEN_WINDOW)
            except nfc.clf.BrokenLinkError:
                return
            except nfc.clf.CommunicationError:
                return  # the reader has gone quiet: go back to listening for polls
            response = tag.process_command(command) if command else None

    def _read_block(self, number: int, _rb: bool, _re: bool) -> bytes | None:
        if self.pull_after is not None and self.block_reads >= self.pull_after:
            os._exit(0)  # taken off the reader mid-read
        self.block_reads += 1
        return bytes(self.blocks[number]) if number < len(self.blocks) else None

    def _write_block(self, number: int, data: bytes, _wb: bool, _we: bool) -> bool:
        if number >= len(self.blocks) or not self.blocks[0][10]:
            return False  # beyond the tag, or read-only
        self.blocks[number][:] = data
        tmp = self.image.with_suffix(".tmp")
        tmp.write_bytes(b"".join(bytes(b) for b in self.blocks))
        os.replace(tmp, self.image)
        return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m drivers.cards.virtual_tag", description=__doc__)
    parser.add_argument("--port", type=int, default=NFC_UDP_PORT)
    parser.add_argument("--image", type=Path, required=True, help="the tag's blocks (attribute block first)")
    parser.add_argument("--pull-after", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    _TagProcess(args.image, args.port, args.pull_after).run()


if __name__ == "__main__":
    main()
