"""Card benchmark: card inserted -> document read, the meter's PC/SC driver against a bare pyscard
client waiting for the same card on the same pcscd; and signature checks per second.

* **inserted -> read**: each round pulls the card, starts a waiter, waits until it is blocked on
  pcscd, lets a random pause pass (a household does not insert in step with pcscd's reader polling),
  inserts the virtual card (it connects to vpcd) and times until the whole document is read. The
  waiter is either the meter's :class:`drivers.cards.pcsc.PcscSlots` (its monitor thread, the slot's
  worker, the Type 4 read with its CC, NDEF parsing) or a bare client: ``SCardGetStatusChange`` with
  the same timeout, then connect, SELECT the NDEF application, SELECT the NDEF file, READ BINARY its
  length and body, the least any client must do. The two alternate, same card, same reader, same
  pcscd, same number of rounds. For the driver the time to the committed pending change (S801/S802,
  after verification) is printed too.
* **signature checks/s**: full :func:`appliance.trust.verify_document` (certificate + document
  signatures, parsing, every check) per second on one core.
"""
from __future__ import annotations

import os
import random
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

WAIT_MS = 500  # PcscSlots' default SCardGetStatusChange timeout, as the meter service runs it
MAX_PAUSE = 0.5  # random pause before inserting: longer than pcscd's 400 ms reader polling period
ROUND_TIMEOUT = 10.0


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


@dataclass
class PathTimes:
    """One waiter's rounds: seconds from insertion to the document, and the documents it read."""

    seconds: list[float] = field(default_factory=list)
    after_notice: list[float] = field(default_factory=list)  # from pcscd reporting the card to the document
    documents: list[bytes] = field(default_factory=list)

    def summary_ms(self) -> dict[str, float]:
        figures = {"p50": _pct(self.seconds, 0.5) * 1000, "p95": _pct(self.seconds, 0.95) * 1000,
                   "max": max(self.seconds) * 1000}
        if self.after_notice:
            figures["after_notice_p50"] = _pct(self.after_notice, 0.5) * 1000
        return figures


class BareClient:
    """The reference: a plain pyscard client that waits for a card in one reader and reads its NDEF file."""

    def __init__(self, reader: str, wait_ms: int = WAIT_MS) -> None:
        self.reader = reader
        self.wait_ms = wait_ms
        self.ready = threading.Event()  # set once blocked on pcscd with the reader's state known
        self.message: bytes | None = None
        self.seen_at: float | None = None  # SCardGetStatusChange returned with the card present
        self.read_at: float | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bare-pcsc-client", daemon=True)

    def start(self) -> BareClient:
        self._thread.start()
        return self

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self.message = self._wait_and_read()
            self.read_at = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - any failure is reported by the bench loop
            self.error = exc
            self.ready.set()

    def _wait_and_read(self) -> bytes:
        from smartcard import scard

        hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            raise RuntimeError("pcscd is not reachable")
        try:
            state = scard.SCARD_STATE_UNAWARE
            while not state & scard.SCARD_STATE_PRESENT:
                hresult, result = scard.SCardGetStatusChange(ctx, self.wait_ms, [(self.reader, state)])
                if hresult == scard.SCARD_S_SUCCESS:
                    state = result[0][1] & ~scard.SCARD_STATE_CHANGED
                elif hresult != scard.SCARD_E_TIMEOUT:
                    raise RuntimeError(scard.SCardGetErrorMessage(hresult))
                self.ready.set()
            self.seen_at = time.perf_counter()
            hresult, card, protocol = scard.SCardConnect(ctx, self.reader, scard.SCARD_SHARE_SHARED,
                                                         scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1)
            if hresult != scard.SCARD_S_SUCCESS:
                raise RuntimeError(scard.SCardGetErrorMessage(hresult))
            try:
                return _read_ndef_file(lambda apdu: _transmit(scard, card, protocol, apdu))
            finally:
                scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        finally:
            scard.SCardReleaseContext(ctx)


def _transmit(scard, card: int, protocol: int, apdu: bytes) -> bytes:
    hresult, response = scard.SCardTransmit(card, protocol, list(apdu))
    if hresult != scard.SCARD_S_SUCCESS or len(response) < 2 or response[-2:] not in ([0x90, 0x00], [0x62, 0x82]):
        raise RuntimeError(f"APDU {apdu.hex()} failed: {hresult:#x} {bytes(response).hex()}")
    return bytes(response[:-2])


def _read_ndef_file(transmit: Callable[[bytes], bytes]) -> bytes:
    """SELECT the NDEF application and its file (known id, no CC), then NLEN and the body, 255 bytes at a time."""
    from drivers.cards.ndef import NDEF_AID, NDEF_FILE_ID
    from drivers.cards.type4 import MAX_SHORT_LE, read_binary, select_aid, select_file

    transmit(select_aid(NDEF_AID))
    transmit(select_file(NDEF_FILE_ID))
    nlen = struct.unpack(">H", transmit(read_binary(0, 2)))[0]
    body = bytearray()
    while len(body) < nlen:
        body += transmit(read_binary(2 + len(body), min(MAX_SHORT_LE, nlen - len(body))))
    return bytes(body)


def _wait_until_empty(reader: str, timeout: float = 5.0) -> None:
    """Block until pcscd reports no card in ``reader``, so the next insertion is a real insertion."""
    from smartcard import scard

    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    try:
        state, deadline = scard.SCARD_STATE_UNAWARE, time.monotonic() + timeout
        while time.monotonic() < deadline:
            hresult, result = scard.SCardGetStatusChange(ctx, 200, [(reader, state)])
            if hresult == scard.SCARD_S_SUCCESS:
                state = result[0][1] & ~scard.SCARD_STATE_CHANGED
                if state & scard.SCARD_STATE_EMPTY:
                    return
        raise RuntimeError(f"pcscd still reports a card in {reader} {timeout:g} s after it was pulled")
    finally:
        scard.SCardReleaseContext(ctx)


def run_card_bench(print_fn: Callable[[str], None] = print, reads: int = 30, verify_seconds: float = 1.0,
                   warmup: int = 2, seed: int = 16) -> dict:
    from appliance.api import MeterAPI
    from appliance.card_events import CardCallbacks
    from appliance.clock import SystemClock
    from appliance.datatypes import DataType
    from appliance.documents import DocumentIntake
    from appliance.domain import Action, Company, Role, SwitchTime
    from appliance.store import Store
    from appliance.trust import keys, verify_document
    from appliance.trust.certificate import issue_certificate
    from appliance.trust.document import ContractDocument, issue_document
    from devkit.pcscd import Pcscd, offered_readers
    from drivers.cards.ndef import card_message, document_from_message
    from drivers.cards.pcsc import PcscSlots
    from drivers.cards.virtual_card import VirtualType4Card
    from drivers.cards.vpcd import EMULATION_SLOTS

    clock = SystemClock()
    now = clock.now()
    root = keys.generate()
    company = keys.generate()
    cert = issue_certificate(root, company_code="BENCH-EP", name="bench", role=Role.SUPPLY,
                             public_key=company.public_key(), not_before=now - timedelta(days=1),
                             not_after=now + timedelta(days=30))

    def document(serial: int) -> bytes:
        doc = ContractDocument(kind=Role.SUPPLY, action=Action.CONTRACT,
                               company=Company("BENCH-EP", "bench", "mqtts://broker.example:8883"),
                               data_types=(DataType.TIME, DataType.POWER, DataType.ENERGY),
                               switch=SwitchTime(at=now + timedelta(days=1)), serial=serial,
                               issued_at=now - timedelta(minutes=1), expires_at=now + timedelta(days=7),
                               meter_id="MTR-BENCH")
        return issue_document(doc, company_key=company, certificate=cert)

    workdir = Path(tempfile.mkdtemp(prefix="smartmeter-cardbench-"))
    daemon = None
    if offered_readers() is None:
        daemon = Pcscd(workdir / "pcscd")
        daemon.start()
    store = Store(workdir / "meter.sqlite3")
    intake = DocumentIntake(MeterAPI(store, "MTR-BENCH", timedelta(minutes=30), clock), keys.public_raw(root))
    slot = EMULATION_SLOTS[0]
    rng = random.Random(seed)
    driver, stored, bare = PathTimes(), PathTimes(), PathTimes()

    def driver_round(card: VirtualType4Card, keep: bool) -> None:
        read, committed = threading.Event(), threading.Event()
        got: dict[str, float | bytes] = {}

        def on_document(_slot: str, raw: bytes) -> None:
            got["read_at"], got["document"] = time.perf_counter(), raw
            read.set()
            if intake.on_card_document(_slot, raw) is not None:
                got["stored_at"] = time.perf_counter()
            committed.set()

        def on_stats(_slot: str, stats) -> None:
            got["after_notice"] = stats.total_seconds  # PcscSlots' own: pcscd's report -> document parsed

        with PcscSlots(CardCallbacks(on_document=on_document, on_stats=on_stats), {slot.reader: slot.slot}, only_named=True,
                       wait_ms=WAIT_MS) as watcher:
            if not watcher.ready.wait(5):
                raise RuntimeError("the card slots did not start watching within 5 s")
            time.sleep(rng.uniform(0, MAX_PAUSE))
            started = time.perf_counter()
            card.insert()
            if not committed.wait(ROUND_TIMEOUT) or "stored_at" not in got:
                raise RuntimeError(f"the driver did not read and store the card within {ROUND_TIMEOUT:g} s")
        if keep:
            driver.seconds.append(got["read_at"] - started)  # type: ignore[operator]
            driver.after_notice.append(got["after_notice"])  # type: ignore[arg-type]
            driver.documents.append(got["document"])  # type: ignore[arg-type]
            stored.seconds.append(got["stored_at"] - started)  # type: ignore[operator]

    def bare_round(card: VirtualType4Card, keep: bool) -> None:
        client = BareClient(slot.reader).start()
        if not client.ready.wait(5) or client.error:
            raise RuntimeError(f"the bare client did not start waiting: {client.error}")
        time.sleep(rng.uniform(0, MAX_PAUSE))
        started = time.perf_counter()
        card.insert()
        client.join(ROUND_TIMEOUT)
        if client.message is None:
            raise RuntimeError(f"the bare client did not read the card within {ROUND_TIMEOUT:g} s: {client.error}")
        if keep:
            bare.seconds.append(client.read_at - started)  # type: ignore[operator]
            bare.after_notice.append(client.read_at - client.seen_at)  # type: ignore[operator]
            bare.documents.append(document_from_message(client.message))  # parsed after the clock stopped

    try:
        _wait_until_empty(slot.reader)
        for i in range(warmup + reads):  # the first rounds warm up pcscd, imports and the threads
            order = (driver_round, bare_round) if i % 2 == 0 else (bare_round, driver_round)
            message = card_message(document(i + 1))  # the same card for both waiters
            for one_round in order:
                card = VirtualType4Card(message, port=slot.port)
                try:
                    one_round(card, keep=i >= warmup)
                finally:
                    card.remove()
                _wait_until_empty(slot.reader)
    finally:
        store.close()
        if daemon is not None:
            daemon.stop()

    raw = document(10_000)
    root_pub = keys.public_raw(root)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < verify_seconds:
        verify_document(raw, root_public_key=root_pub, meter_id="MTR-BENCH", now=now, last_serial=lambda c: None)
        count += 1
    per_second = count / (time.perf_counter() - t0)

    d, s, b = driver.summary_ms(), stored.summary_ms(), bare.summary_ms()
    result = {
        "rounds": len(driver.seconds),
        "driver_ms": d, "stored_ms": s, "bare_ms": b,
        "ratio_p50": d["p50"] / b["p50"], "ratio_p95": d["p95"] / b["p95"],
        "stored_ratio_p50": s["p50"] / b["p50"],
        "after_notice_ratio_p50": d["after_notice_p50"] / b["after_notice_p50"],
        "signature_checks_per_s": per_second,
        "loadavg": os.getloadavg(),
        "driver_documents": driver.documents, "bare_documents": bare.documents,
    }

    def line(figures: dict[str, float]) -> str:
        return f"p50 {figures['p50']:.1f} ms, p95 {figures['p95']:.1f} ms, max {figures['max']:.1f} ms"

    print_fn(f"card inserted -> document read, real pcscd + vpcd, {result['rounds']} rounds each, alternating, "
             f"random pause 0-{MAX_PAUSE * 1000:.0f} ms before each insertion "
             f"(load average {' '.join(f'{x:.2f}' for x in result['loadavg'])})")
    print_fn(f"  meter's driver (PcscSlots):          {line(d)}")
    print_fn(f"  bare pyscard client, same pcscd:     {line(b)}")
    print_fn(f"  ratio driver / bare: p50 {result['ratio_p50']:.2f}x, p95 {result['ratio_p95']:.2f}x (goal <= 1.2x)")
    print_fn(f"  of which after pcscd reported the card: driver p50 {d['after_notice_p50']:.2f} ms, bare "
             f"p50 {b['after_notice_p50']:.2f} ms ({result['after_notice_ratio_p50']:.2f}x; the rest is pcscd "
             f"noticing the card, common to both)")
    print_fn(f"  driver to change stored (verified, committed): {line(s)}; "
             f"p50 {result['stored_ratio_p50']:.2f}x the bare read")
    print_fn(f"document verification (2 Ed25519 signatures + all checks): {per_second:,.0f} /s")
    return result


if __name__ == "__main__":
    run_card_bench()


def cmd_bench(args) -> int:
    run_card_bench(print, reads=args.reads)
    return 0
