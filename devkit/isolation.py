"""A test run of its own: two runs of the suite on one machine must not share virtual card readers.

vpcd's ports come from its reader configuration and the NFC emulation's from nfcpy's udp device, so
a run picks free ones. pcscd always listens on ``/run/pcscd/pcscd.comm`` (only the client library
honours ``PCSCLITE_CSOCK_NAME``), so :class:`devkit.pcscd.Pcscd` runs the daemon in a mount namespace
of its own where ``/run/pcscd`` is this run's folder; the clients find it through the variable.
Apply the environment before anything imports ``drivers.cards`` or makes a PC/SC call: the ports are
read at import and libpcsclite reads the socket name once per process.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from .ports import free_port, free_port_block


def isolated_environment(workdir: Path) -> dict[str, str]:
    """The variables that give this run (and every process it starts) readers of its own."""
    env = {"SMARTMETER_VPCD_PORT": str(free_port_block(4)),
           "SMARTMETER_NFC_UDP_PORT": str(free_port(socket.SOCK_DGRAM))}
    if os.geteuid() == 0 and shutil.which("unshare"):  # a mount namespace needs root
        folder = workdir / "pcscd"
        folder.mkdir(parents=True, exist_ok=True)
        env["PCSCLITE_CSOCK_NAME"] = str(folder / "pcscd.comm")
    return env
