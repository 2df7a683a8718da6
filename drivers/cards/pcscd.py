"""pcscd with vsmartcard's vpcd driver: three virtual PC/SC card slots for emulation and tests.

pcscd names a reader ``FRIENDLYNAME NN SS``; vpcd gives each reader.conf entry two slots, on TCP
ports CHANNELID and CHANNELID+1. A third slot needs a second entry, and two things make it work:

* a different friendly name (with the same name pcscd lists only the first two slots);
* its own copy of the driver library. vpcd keeps its sockets in one global array indexed by the
  slot number *within* a reader, so two readers served by one loaded library overwrite each
  other's slots (reader 1 would poll reader 2's port). pcscd loads a library once per path, so
  a copy under another path gives the second reader its own array.

Slots 1-3 of Fig. 9(a) are the first three vpcd slots; the fourth port is left unused.

vpcd listens on all interfaces: anyone on the network could insert a card. Never install it on a
production meter.
"""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
BASE_PORT = 35963


@dataclass(frozen=True)
class VpcdSlot:
    slot: str  # the meter's slot number, as printed on the front panel
    reader: str  # the PC/SC reader name pcscd gives it
    port: int  # where the virtual card connects


EMULATION_SLOTS: tuple[VpcdSlot, ...] = (
    VpcdSlot("1", "Virtual PCD 00 00", BASE_PORT),
    VpcdSlot("2", "Virtual PCD 00 01", BASE_PORT + 1),
    VpcdSlot("3", "Virtual PCD 2 00 00", BASE_PORT + 2),
)


def reader_slot_names() -> dict[str, str]:
    """PC/SC reader name -> slot, for :class:`drivers.cards.pcsc.PcscSlots` in emulation."""
    return {s.reader: s.slot for s in EMULATION_SLOTS}


def write_vpcd_config(workdir: Path, base_port: int = BASE_PORT) -> Path:
    """A reader.conf.d directory (returned) with two vpcd readers, four slots, for ``pcscd -c``.

    The second reader's driver copy lives beside the directory, not in it: pcscd reads every
    regular file in the directory as reader configuration.
    """
    conf = workdir / "reader.conf.d"
    conf.mkdir(parents=True, exist_ok=True)
    second_driver = workdir / "libifdvpcd-reader2.so"
    shutil.copyfile(VPCD_DRIVER, second_driver)
    entries = [("Virtual PCD", base_port, VPCD_DRIVER), ("Virtual PCD 2", base_port + 2, second_driver)]
    text = "\n".join(
        f'FRIENDLYNAME "{name}"\nDEVICENAME   /dev/null:0x{port:04X}\nLIBPATH      {lib}\nCHANNELID    0x{port:04X}\n'
        for name, port, lib in entries)
    (conf / "smartmeter-vpcd").write_text(text)
    return conf


def missing_prerequisites() -> list[str]:
    """What is not installed for real PC/SC emulation, in words an installer can act on."""
    missing = []
    if not shutil.which("pcscd") and not Path("/usr/sbin/pcscd").exists():
        missing.append("pcscd is not installed (apt-get install pcscd)")
    if not VPCD_DRIVER.exists():
        missing.append(f"the vpcd driver {VPCD_DRIVER} is missing (apt-get install vsmartcard-vpcd)")
    if importlib.util.find_spec("smartcard") is None:
        missing.append("pyscard is not installed (pip install pyscard; needs libpcsclite-dev and swig)")
    return missing


def list_readers() -> list[str] | None:
    """The readers pcscd offers, or None if no pcscd answers."""
    from smartcard import scard

    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return None
    try:
        hresult, readers = scard.SCardListReaders(ctx, [])
        return list(readers) if hresult == scard.SCARD_S_SUCCESS else []
    finally:
        scard.SCardReleaseContext(ctx)


class Pcscd:
    """A pcscd in the foreground with the emulation readers, started and stopped by its owner."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> "Pcscd":
        missing = missing_prerequisites()
        if missing:
            raise RuntimeError("; ".join(missing))
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = write_vpcd_config(self.workdir)
        log = open(self.workdir / "pcscd.log", "wb")
        pcscd = shutil.which("pcscd") or "/usr/sbin/pcscd"
        self.process = subprocess.Popen([pcscd, "-f", "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        wanted = {s.reader for s in EMULATION_SLOTS}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pcscd exited with {self.process.returncode}; see {self.workdir / 'pcscd.log'}")
            if wanted <= set(list_readers() or []):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pcscd did not offer the readers {sorted(wanted)} within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "Pcscd":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
