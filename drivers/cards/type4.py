"""The NFC Forum Type 4 Tag NDEF procedure in APDUs, for the reader side and the card side.

Reader: SELECT the NDEF application D2760000850101, SELECT the CC file E103, READ BINARY the CC,
SELECT the NDEF file the CC names, READ BINARY its 2-byte NLEN, then the message in chunks of at
most the CC's MLe. Writing is the same with UPDATE BINARY (NLEN zeroed first, set last, so a card
pulled mid-write reads as blank rather than half-written).
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Callable

from appliance.card_events import CardReadError, ReadStats

from .ndef import (
    ACCESS_GRANTED,
    CC_FILE_ID,
    MAX_MESSAGE,
    NDEF_AID,
    CapabilityContainer,
    NotAContractCard,
)

SW_OK = 0x9000
SW_EOF_WARNING = 0x6282  # fewer bytes than asked: end of file
SW_WRONG_LENGTH = 0x6700
SW_SECURITY = 0x6982
SW_NO_EF = 0x6986
SW_NOT_FOUND = 0x6A82
SW_WRONG_P1P2 = 0x6A86
SW_OFFSET = 0x6B00
SW_INS = 0x6D00
SW_CLA = 0x6E00

INS_SELECT, INS_READ, INS_UPDATE = 0xA4, 0xB0, 0xD6
MAX_SHORT_LE = 0xFF  # short APDUs only: every reader and phone supports them

Transmit = Callable[[bytes], tuple[bytes, int]]  # command APDU -> (response data, SW1SW2)


def select_aid(aid: bytes) -> bytes:
    return bytes([0x00, INS_SELECT, 0x04, 0x00, len(aid)]) + aid + b"\x00"


def select_file(fid: int) -> bytes:
    return bytes([0x00, INS_SELECT, 0x00, 0x0C, 0x02]) + struct.pack(">H", fid)


def read_binary(offset: int, length: int) -> bytes:
    return bytes([0x00, INS_READ]) + struct.pack(">H", offset) + bytes([length & 0xFF])


def update_binary(offset: int, data: bytes) -> bytes:
    return bytes([0x00, INS_UPDATE]) + struct.pack(">H", offset) + bytes([len(data)]) + data


@dataclass
class _Counting:
    """Wraps a transmit function to count exchanges and their time (for ReadStats)."""

    transmit: Transmit
    exchanges: int = 0
    seconds: float = 0.0

    def __call__(self, apdu: bytes) -> tuple[bytes, int]:
        started = time.perf_counter()
        try:
            return self.transmit(apdu)
        finally:
            self.exchanges += 1
            self.seconds += time.perf_counter() - started


def _expect_ok(transmit: Transmit, apdu: bytes, failure: str) -> bytes:
    data, sw = transmit(apdu)
    if sw not in (SW_OK, SW_EOF_WARNING):
        raise NotAContractCard(f"{failure} (status {sw:04X})")
    return data


def _open_ndef_file(transmit: Transmit) -> CapabilityContainer:
    _expect_ok(transmit, select_aid(NDEF_AID), "the card has no NFC Forum NDEF application")
    _expect_ok(transmit, select_file(CC_FILE_ID), "the card has no capability container (file E103)")
    cc = CapabilityContainer.from_bytes(_expect_ok(transmit, read_binary(0, CapabilityContainer.LENGTH),
                                                   "the card refused to give its capability container"))
    _expect_ok(transmit, select_file(cc.ndef_file_id), f"the card has no NDEF file {cc.ndef_file_id:04X}")
    return cc


def read_ndef(transmit: Transmit) -> tuple[bytes, ReadStats]:
    """Read the whole NDEF message; raises NotAContractCard for a foreign card, CardReadError if pulled."""
    started = time.perf_counter()
    counting = _Counting(transmit)
    cc = _open_ndef_file(counting)
    head = _expect_ok(counting, read_binary(0, 2), "the card refused to give the NDEF length")
    if len(head) != 2:
        raise NotAContractCard("the card returned a malformed NDEF length")
    nlen = struct.unpack(">H", head)[0]
    if nlen == 0:
        raise NotAContractCard("the card is blank (no NDEF message)")
    if nlen > min(cc.max_ndef_size - 2, MAX_MESSAGE):
        raise NotAContractCard(f"the card declares a {nlen}-byte NDEF message, more than it can hold")
    message = bytearray()
    chunk = min(cc.mle, MAX_SHORT_LE)
    while len(message) < nlen:
        want = min(chunk, nlen - len(message))
        data = _expect_ok(counting, read_binary(2 + len(message), want), "the card refused a read of its NDEF file")
        if not data:
            raise CardReadError("the card stopped returning data in the middle of its NDEF file")
        message += data[:want]
    stats = ReadStats(counting.exchanges, counting.seconds, time.perf_counter() - started)
    return bytes(message), stats


def write_ndef(transmit: Transmit, message: bytes) -> None:
    """Write ``message`` to a writable Type 4 card (a company's blank card, or a virtual card)."""
    cc = _open_ndef_file(transmit)
    if cc.write_access != ACCESS_GRANTED:
        raise NotAContractCard("the card's NDEF file is read-only")
    if len(message) + 2 > cc.max_ndef_size:
        raise NotAContractCard(f"the card's NDEF file holds {cc.max_ndef_size - 2} bytes, the message is {len(message)}")
    _expect_ok(transmit, update_binary(0, b"\x00\x00"), "the card refused to clear its NDEF length")
    chunk = min(cc.mlc, MAX_SHORT_LE)
    for offset in range(0, len(message), chunk):
        _expect_ok(transmit, update_binary(2 + offset, message[offset:offset + chunk]), "the card refused a write")
    _expect_ok(transmit, update_binary(0, struct.pack(">H", len(message))), "the card refused to set its NDEF length")


class Type4Applet:
    """The card side: an NDEF Tag Application answering SELECT, READ BINARY and UPDATE BINARY.

    It serves the files of :func:`drivers.cards.ndef.type4_files`; the CC file is read-only and
    the NDEF file is writable if the CC grants write access.
    """

    def __init__(self, files: dict[int, bytes], on_write: Callable[[bytes], None] | None = None) -> None:
        self.files = {fid: bytearray(data) for fid, data in files.items()}
        self.cc = CapabilityContainer.from_bytes(bytes(self.files[CC_FILE_ID]))
        self.on_write = on_write  # called with the new NDEF message once NLEN is set
        self.app_selected = False
        self.current: int | None = None

    def process(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data + SW1 SW2."""
        if len(apdu) < 4:
            return _sw(SW_WRONG_LENGTH)
        cla, ins, p1, p2 = apdu[:4]
        if cla != 0x00:
            return _sw(SW_CLA)
        body = apdu[4:]
        if ins == INS_SELECT:
            return self._select(p1, p2, body)
        if ins in (INS_READ, INS_UPDATE):
            if self.current is None:
                return _sw(SW_NO_EF)
            offset = (p1 << 8) | p2
            if p1 & 0x80:
                return _sw(SW_WRONG_P1P2)  # short-file-id addressing is not used by the NDEF procedure
            return self._read(offset, body) if ins == INS_READ else self._update(offset, body)
        return _sw(SW_INS)

    def _select(self, p1: int, p2: int, body: bytes) -> bytes:
        if not body or len(body) not in (body[0] + 1, body[0] + 2):  # Lc, data, optional Le
            return _sw(SW_WRONG_LENGTH)
        name = body[1:1 + body[0]]
        if p1 == 0x04:
            self.current = None
            self.app_selected = name == NDEF_AID
            return _sw(SW_OK if self.app_selected else SW_NOT_FOUND)
        if p1 == 0x00 and p2 == 0x0C and len(name) == 2 and self.app_selected:
            fid = struct.unpack(">H", name)[0]
            if fid in self.files:
                self.current = fid
                return _sw(SW_OK)
            return _sw(SW_NOT_FOUND)
        return _sw(SW_WRONG_P1P2 if self.app_selected else SW_NOT_FOUND)

    def _read(self, offset: int, body: bytes) -> bytes:
        data = self.files[self.current]  # type: ignore[index]
        if len(body) != 1:
            return _sw(SW_WRONG_LENGTH)
        le = body[0] or 256
        if offset >= len(data):
            return _sw(SW_OFFSET)
        out = bytes(data[offset:offset + le])
        return out + struct.pack(">H", SW_OK if len(out) == le else SW_EOF_WARNING)

    def _update(self, offset: int, body: bytes) -> bytes:
        if self.current == CC_FILE_ID or self.cc.write_access != ACCESS_GRANTED:
            return _sw(SW_SECURITY)
        if not body or body[0] != len(body) - 1:
            return _sw(SW_WRONG_LENGTH)
        data = self.files[self.current]  # type: ignore[index]
        chunk = body[1:]
        if offset + len(chunk) > len(data):
            return _sw(SW_OFFSET)
        data[offset:offset + len(chunk)] = chunk
        nlen = struct.unpack(">H", data[0:2])[0]
        if offset == 0 and nlen and self.on_write:
            self.on_write(bytes(data[2:2 + nlen]))
        return _sw(SW_OK)

    def message(self) -> bytes:
        data = self.files[self.cc.ndef_file_id]
        return bytes(data[2:2 + struct.unpack(">H", data[0:2])[0]])


def _sw(sw: int) -> bytes:
    return struct.pack(">H", sw)
