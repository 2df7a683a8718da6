"""pcscd with vsmartcard's vpcd driver: three virtual PC/SC card slots for emulation and tests.

vpcd gives each reader.conf entry two slots. A third slot needs a second entry, and two things
make it work:

* a different friendly name (with the same name pcscd lists only the first two slots);
* its own copy of the driver library. vpcd keeps its sockets in one global array indexed by the
  slot number *within* a reader, so two readers served by one loaded library overwrite each
  other's slots (reader 1 would poll reader 2's port). pcscd loads a library once per path, so
  a copy under another path gives the second reader its own array.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from drivers.cards.vpcd import BASE_PORT, EMULATION_SLOTS

from .process import ChildProcess

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
DEFAULT_SOCKET = Path("/run/pcscd/pcscd.comm")


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


def offered_readers() -> list[str] | None:
    """The readers a running pcscd offers (pyscard's own listing), or None if no pcscd answers."""
    from smartcard.pcsc.PCSCExceptions import EstablishContextException
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except EstablishContextException:
        return None


class Pcscd:
    """A pcscd in the foreground with the emulation readers, started and stopped by its owner."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.child: ChildProcess | None = None

    @property
    def pid(self) -> int | None:
        return self.child.pid if self.child else None

    def start(self, timeout: float = 10.0) -> "Pcscd":
        missing = missing_prerequisites()
        if missing:
            raise RuntimeError("; ".join(missing))
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = write_vpcd_config(self.workdir)
        argv = [shutil.which("pcscd") or "/usr/sbin/pcscd", "-f", "-c", str(conf)]
        socket_name = Path(os.environ.get("PCSCLITE_CSOCK_NAME") or DEFAULT_SOCKET)
        if socket_name != DEFAULT_SOCKET:
            # pcscd always listens in /run/pcscd: in a mount namespace of its own, that folder is the
            # one the clients were pointed at (devkit.isolation)
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                    'mkdir -p /run/pcscd && mount --bind "$0" /run/pcscd && shift && exec "$@"',
                    str(socket_name.parent), "-", *argv]
        wanted = {s.reader for s in EMULATION_SLOTS}
        self.child = ChildProcess(argv, self.workdir / "pcscd.log")
        self.child.start(lambda: wanted <= set(offered_readers() or []), timeout=timeout,
                         what=f"pcscd offering {sorted(wanted)}")
        return self

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
        self.child = None

    def __enter__(self) -> "Pcscd":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
