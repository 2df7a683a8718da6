"""A virtual contactless card in a vpcd reader: real pcscd, real APDUs, no hardware.

vsmartcard's ``vpcd`` driver makes pcscd listen on TCP (35963 for the first reader slot, one port
per slot). A virtual card *connects* to that port: connecting is inserting the card, closing is
pulling it out. Each message is a 2-byte big-endian length and the bytes; a 1-byte message is a
control (0 power off, 1 power on, 2 reset, 4 send the ATR); anything longer is a command APDU,
answered with the response APDU. The card answers as an NFC Forum Type 4 Tag
(:class:`drivers.cards.type4.Type4Applet`).
"""
from __future__ import annotations

import logging
import socket
import struct
import threading
from typing import Callable

from appliance.card_events import CardReadError

from .ndef import type4_files
from .type4 import Type4Applet
from .vpcd import BASE_PORT

log = logging.getLogger(__name__)

VPCD_PORT = BASE_PORT  # the first virtual reader slot
# ISO/IEC 14443-4 card as a PC/SC reader reports it: T=1, no historical bytes.
ATR = bytes.fromhex("3B80800101")
CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


class VirtualType4Card:
    """One card in one vpcd slot. ``pull_after`` answers that many APDUs, then vanishes mid-conversation."""

    def __init__(self, message: bytes, *, port: int = VPCD_PORT, host: str = "127.0.0.1",
                 pull_after: int | None = None, on_write: Callable[[bytes], None] | None = None) -> None:
        self.applet = Type4Applet(type4_files(message), on_write=on_write)
        self.address = (host, port)
        self.pull_after = pull_after
        self.apdus = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.pulled = threading.Event()  # set once the card has left the reader

    def insert(self, timeout: float = 2.0) -> "VirtualType4Card":
        try:
            self._sock = socket.create_connection(self.address, timeout=timeout)
        except OSError as exc:
            raise CardReadError(
                f"no vpcd reader at {self.address[0]}:{self.address[1]} ({exc.strerror or exc}): "
                "is pcscd running with the vsmartcard-vpcd driver?") from None
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._serve, name=f"vpcd-card-{self.address[1]}", daemon=True)
        self._thread.start()
        return self

    def remove(self) -> None:
        """Pull the card out: pcscd sees the socket close as card removal."""
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self.pulled.set()

    def __enter__(self) -> "VirtualType4Card":
        return self.insert()

    def __exit__(self, *_exc: object) -> None:
        self.remove()

    @property
    def message(self) -> bytes:
        return self.applet.message()

    def _serve(self) -> None:
        sock = self._sock
        try:
            while sock is not None:
                msg = _recv_message(sock)
                if msg is None:
                    break
                reply = self._answer(msg)
                if reply is _PULL:
                    break
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except OSError:
            pass  # removed while waiting: that is what removal is
        finally:
            if self._sock is sock:
                self.remove()

    def _answer(self, msg: bytes) -> bytes | object | None:
        if len(msg) == 1:
            if msg[0] == CTRL_ATR:
                return ATR
            if msg[0] in (CTRL_ON, CTRL_RESET, CTRL_OFF):
                self.applet.app_selected, self.applet.current = False, None  # a reset deselects everything
            return None
        if self.pull_after is not None and self.apdus >= self.pull_after:
            log.debug("virtual card on port %d pulled out after %d APDUs", self.address[1], self.apdus)
            return _PULL
        self.apdus += 1
        return self.applet.process(msg)


_PULL = object()


def _recv_message(sock: socket.socket) -> bytes | None:
    head = _recv_exact(sock, 2)
    if head is None:
        return None
    return _recv_exact(sock, struct.unpack(">H", head)[0])


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        # vpcd writes the length and the APDU separately; acknowledging at once keeps Nagle on its
        # side from holding the APDU for our delayed ACK (~40 ms per exchange otherwise).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        part = sock.recv(n - len(buf))
        if not part:
            return None
        buf += part
    return bytes(buf)
