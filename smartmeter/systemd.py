"""The meter service under systemd: readiness and watchdog (``sd_notify``), and log records as journal
entries with fields. Both are a datagram to a Unix socket whose protocol systemd documents, so they
need no library; outside systemd (no ``$NOTIFY_SOCKET``, no ``$JOURNAL_STREAM``) both do nothing.
"""
from __future__ import annotations

import logging
import os
import socket
import struct
import sys
import time
from pathlib import Path

JOURNAL_SOCKET = "/run/systemd/journal/socket"
MAX_JOURNAL_DATAGRAM = 200_000  # larger records go through a memfd in journald's protocol; we cut them instead


def _send(address: str, payload: bytes) -> bool:
    if address.startswith("@"):  # an abstract socket, as systemd may give
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
        return True
    except OSError:
        return False


class Notifier:
    """``READY=1`` once the meter is up, ``WATCHDOG=1`` from its loop at half ``WatchdogSec``, ``STOPPING=1``.

    A loop that hangs (a bus read that never returns, a store lock held forever) stops the heartbeat,
    and systemd kills and restarts the service after ``WatchdogSec``."""

    def __init__(self, environ: dict[str, str] | None = None, monotonic=time.monotonic) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get("NOTIFY_SOCKET") or None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        for_us = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 and for_us else None
        self._monotonic = monotonic
        self._last_beat: float | None = None

    @property
    def active(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        if self.address is None:
            return False
        return _send(self.address, "\n".join(fields).encode())

    def ready(self, status: str) -> None:
        self.notify("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def heartbeat(self) -> None:
        """Called after every loop iteration; sends at most one ``WATCHDOG=1`` per half watchdog period."""
        if self.watchdog_s is None:
            return
        now = self._monotonic()
        if self._last_beat is None or now - self._last_beat >= self.watchdog_s / 2:
            self._last_beat = now
            self.notify("WATCHDOG=1")


# logging level -> syslog priority (journal field PRIORITY)
_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}


def _field(name: str, value: str) -> bytes:
    data = value.encode("utf-8", "replace")
    if b"\n" in data:  # journald's binary form: NAME, newline, little-endian 64-bit length, data
        return name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return name.encode() + b"=" + data + b"\n"


class JournalHandler(logging.Handler):
    """Each record as one journal entry: ``MESSAGE``, ``PRIORITY``, ``SYSLOG_IDENTIFIER``, ``LOGGER``,
    ``CODE_FILE``/``CODE_LINE``/``CODE_FUNC``, the traceback as ``EXCEPTION``, and ``fields`` (e.g.
    ``METER_ID``) on every entry, so ``journalctl -u smartmeter-meter METER_ID=MTR-0001 PRIORITY=3``
    finds them. If the journal cannot take a record, the line goes to stderr instead."""

    def __init__(self, identifier: str, fields: dict[str, str] | None = None,
                 address: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.identifier = identifier
        self.fields = {k.upper(): str(v) for k, v in (fields or {}).items()}
        self.address = address
        self.fallback = logging.StreamHandler(sys.stderr)

    def entry(self, record: logging.LogRecord) -> bytes:
        message = record.getMessage()
        parts = [_field("MESSAGE", message), _field("PRIORITY", str(_PRIORITY.get(record.levelno, 6))),
                 _field("SYSLOG_IDENTIFIER", self.identifier), _field("LOGGER", record.name),
                 _field("CODE_FILE", record.pathname), _field("CODE_LINE", str(record.lineno)),
                 _field("CODE_FUNC", record.funcName)]
        if record.exc_info:
            parts.append(_field("EXCEPTION", logging.Formatter().formatException(record.exc_info)))
        parts += [_field(k, v) for k, v in self.fields.items()]
        return b"".join(parts)[:MAX_JOURNAL_DATAGRAM]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sent = _send(self.address, self.entry(record))
        except Exception:  # noqa: BLE001 - logging must never take the meter down
            sent = False
        if not sent:
            self.fallback.emit(record)


def journal_attached(environ: dict[str, str] | None = None) -> bool:
    """True when stderr is systemd's journal stream (``$JOURNAL_STREAM`` names its device and inode)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino) and Path(JOURNAL_SOCKET).exists()


def log_to_journal(identifier: str, **fields: str) -> bool:
    """Under systemd, replace the root logger's stream handler by a :class:`JournalHandler`."""
    if not journal_attached():
        return False
    root = logging.getLogger()
    handler = JournalHandler(identifier, fields)
    handler.setLevel(logging.NOTSET)
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    return True
