"""PC/SC card slots (pyscard over pcscd): every reader is a slot of Fig. 9(a).

One monitor thread waits in ``SCardGetStatusChange`` on all readers (and on pcsc-lite's PnP
pseudo-reader, so readers plugged in later become slots too). When a card arrives, that slot's
own worker runs the Type 4 Tag read sequence; slots read in parallel, and each slot's callbacks
come in order (inserted, document or error, removed). A card pulled mid-read ends as one
:class:`CardReadError`; nothing half-read is delivered.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from smartcard import scard

from appliance.card_events import CardCallbacks, CardReadError, ReadStats
from appliance.trust.rejections import DocumentRejected

from .ndef import document_from_message
from .type4 import Transmit, read_ndef, write_ndef

log = logging.getLogger(__name__)

PNP = "\\\\?PnP?\\Notification"
_GONE = {  # transmit/connect results that mean the card left or stopped answering
    scard.SCARD_W_REMOVED_CARD: "the card was removed during reading",
    scard.SCARD_E_NO_SMARTCARD: "the card was removed during reading",
    scard.SCARD_W_RESET_CARD: "the card was reset during reading",
    scard.SCARD_W_UNRESPONSIVE_CARD: "the card does not answer",
    scard.SCARD_E_NOT_TRANSACTED: "the card stopped answering during reading",
    scard.SCARD_E_READER_UNAVAILABLE: "the reader was disconnected during reading",
    scard.SCARD_E_UNKNOWN_READER: "the reader is gone",
}


def _reason(hresult: int, doing: str) -> str:
    return _GONE.get(hresult) or f"{doing} failed: {scard.SCardGetErrorMessage(hresult).strip()}"


class CardSession:
    """A connection to the card in one reader, with a transmit function for the Type 4 procedure."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        hresult, self.context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise CardReadError(f"pcscd is not reachable: {scard.SCardGetErrorMessage(hresult).strip()}")
        hresult, self.card, self.protocol = scard.SCardConnect(
            self.context, reader, scard.SCARD_SHARE_SHARED, scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
        if hresult != scard.SCARD_S_SUCCESS:
            scard.SCardReleaseContext(self.context)
            raise CardReadError(_reason(hresult, f"connecting to the card in {reader}"))

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        hresult, response = scard.SCardTransmit(self.card, self.protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            raise CardReadError(_reason(hresult, "an exchange with the card"))
        if len(response) < 2:
            raise CardReadError("the card was removed during reading (a command got no answer)")
        sw1, sw2 = response[-2], response[-1]
        if sw1 == 0x61:  # T=0: more data waiting, fetch it with GET RESPONSE
            return self.transmit(bytes([0x00, 0xC0, 0x00, 0x00, sw2]))
        if sw1 == 0x6C:  # T=0: wrong Le, the card says which
            return self.transmit(apdu[:-1] + bytes([sw2]))
        return bytes(response[:-2]), (sw1 << 8) | sw2

    def close(self) -> None:
        scard.SCardDisconnect(self.card, scard.SCARD_LEAVE_CARD)
        scard.SCardReleaseContext(self.context)

    def __enter__(self) -> Transmit:
        return self.transmit

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_card(reader: str, wait: float = 0.0) -> tuple[bytes, ReadStats]:
    """Read the NDEF message from the card in ``reader`` (raises CardReadError / NotAContractCard).

    ``wait`` seconds are given for a card to appear first (a one-off read, e.g. ``smartmeter card read``).
    """
    if wait:
        wait_for_card(reader, wait)
    with CardSession(reader) as transmit:
        return read_ndef(transmit)


def write_card(reader: str, message: bytes, wait: float = 0.0) -> None:
    """Write an NDEF message to the writable Type 4 card in ``reader``."""
    if wait:
        wait_for_card(reader, wait)
    with CardSession(reader) as transmit:
        write_ndef(transmit, message)


def wait_for_card(reader: str, timeout: float) -> None:
    """Wait until ``reader`` holds a card. pcscd polls readers only while a client waits like this."""
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise CardReadError("pcscd is not running")
    try:
        state = scard.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while True:
            left = int(max(0.0, deadline - time.monotonic()) * 1000)
            hresult, result = scard.SCardGetStatusChange(ctx, left, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                state = result[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & scard.SCARD_STATE_PRESENT:
                    return
                if state & scard.SCARD_STATE_UNKNOWN:
                    raise CardReadError(f"there is no reader {reader!r}")
            elif hresult == scard.SCARD_E_TIMEOUT or time.monotonic() >= deadline:
                raise CardReadError(f"no card in {reader} within {timeout:g} s")
            else:
                raise CardReadError(_reason(hresult, f"waiting for a card in {reader}"))
    finally:
        scard.SCardReleaseContext(ctx)


class PcscSlots:
    """Watches every PC/SC reader and reports card documents through :class:`CardCallbacks`.

    ``slot_names`` maps reader names to slot names (e.g. ``{"Virtual PCD 00 00": "1"}``); a reader
    not in it is its own slot name. With ``only_named`` other readers are ignored.
    """

    def __init__(self, callbacks: CardCallbacks, slot_names: Mapping[str, str] | None = None, *,
                 only_named: bool = False, wait_ms: int = 500) -> None:
        self.callbacks = callbacks
        self.slot_names = dict(slot_names or {})
        self.only_named = only_named
        self.wait_ms = wait_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._context: int | None = None
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._present: dict[str, bool] = {}
        self.ready = threading.Event()  # set once the first reader states are known

    def slot_of(self, reader: str) -> str | None:
        if reader in self.slot_names:
            return self.slot_names[reader]
        return None if self.only_named else reader

    def start(self) -> "PcscSlots":
        self._thread = threading.Thread(target=self._monitor, name="pcsc-slots", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._context is not None:
            scard.SCardCancel(self._context)
        if self._thread is not None:
            self._thread.join(timeout=5)
        for worker in self._workers.values():
            worker.shutdown(wait=True)

    def __enter__(self) -> "PcscSlots":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _monitor(self) -> None:
        while not self._stop.is_set():
            hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hresult != scard.SCARD_S_SUCCESS:
                log.warning("pcscd is not reachable; retrying")
                self._stop.wait(1.0)
                continue
            self._context = ctx
            try:
                self._watch(ctx)
            finally:
                self._context = None
                scard.SCardReleaseContext(ctx)

    def _watch(self, ctx: int) -> None:
        states: dict[str, int] = {}
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            hresult, names = scard.SCardListReaders(ctx, [])
            names = [n for n in (names if hresult == scard.SCARD_S_SUCCESS else []) if self.slot_of(n) is not None]
            for gone in set(self._present) - set(names):
                self._changed(gone, False, time.perf_counter())
                self._present.pop(gone, None)
                states.pop(gone, None)
            query = [(n, states.get(n, scard.SCARD_STATE_UNAWARE)) for n in names] + [(PNP, pnp_state)]
            hresult, result = scard.SCardGetStatusChange(ctx, self.wait_ms, query)
            seen_at = time.perf_counter()
            if hresult == scard.SCARD_E_TIMEOUT:
                self.ready.set()
                continue
            if hresult != scard.SCARD_S_SUCCESS:
                if hresult != scard.SCARD_E_CANCELLED:
                    log.warning("waiting for cards failed: %s", scard.SCardGetErrorMessage(hresult).strip())
                    self._stop.wait(0.5)
                return  # re-establish the context (pcscd restarted) or stop
            for reader, event, _atr in result:
                if reader == PNP:
                    pnp_state = event & ~scard.SCARD_STATE_CHANGED
                    continue
                previous = states.get(reader)
                states[reader] = event & ~scard.SCARD_STATE_CHANGED
                present = bool(event & scard.SCARD_STATE_PRESENT)
                was_present = self._present.get(reader, False)
                # pcsc-lite counts insertions and removals in the upper 16 bits: a card swapped
                # between two polls keeps PRESENT but moves the count.
                swapped = present and was_present and previous is not None and (event >> 16) != (previous >> 16)
                if swapped:
                    self._changed(reader, False, seen_at)
                if present != was_present or swapped:
                    self._present[reader] = present
                    self._changed(reader, present, seen_at)
            self.ready.set()

    def _changed(self, reader: str, present: bool, seen_at: float) -> None:
        slot = self.slot_of(reader)
        if slot is None:
            return
        worker = self._workers.setdefault(slot, ThreadPoolExecutor(1, thread_name_prefix=f"card-slot-{slot}"))
        if present:
            worker.submit(self._read, reader, slot, seen_at)
        else:
            worker.submit(self.callbacks.safely, "on_removed", slot)

    def _read(self, reader: str, slot: str, seen_at: float) -> None:
        self.callbacks.safely("on_inserted", slot)
        try:
            message, stats = read_card(reader)
            document = document_from_message(message)
        except (CardReadError, DocumentRejected) as exc:
            log.info("slot %s: %s", slot, exc)
            self.callbacks.safely("on_error", slot, exc)
            return
        stats = ReadStats(stats.exchanges, stats.exchange_seconds, time.perf_counter() - seen_at)
        self.callbacks.safely("on_stats", slot, stats)
        self.callbacks.safely("on_document", slot, document)
