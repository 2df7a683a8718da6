"""Card benchmark: card present -> change stored, through the real pcscd path, and
signature checks per second.

* **present -> stored**: from the moment the virtual card connects to vpcd (the card is in the
  slot) to the moment the core has verified the document and committed the pending change
  (S801/S802). Compared with the bare APDU exchange time of the same read (``ReadStats``), the
  ratio shows what pcscd's polling, the reader thread, verification and the SQLite commit add.
* **signature checks/s**: full :func:`appliance.trust.verify_document` (certificate + document
  signatures, parsing, every check) per second on one core.
"""
from __future__ import annotations

import statistics
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_card_bench(print_fn: Callable[[str], None] = print, reads: int = 30, verify_seconds: float = 1.0) -> dict:
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
    from drivers.cards.ndef import card_message
    from drivers.cards.pcsc import PcscSlots
    from drivers.cards.virtual_card import VirtualType4Card
    from drivers.cards.vpcd import EMULATION_SLOTS, reader_slot_names

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
    stored = threading.Event()
    stats: list = []

    def on_document(slot: str, raw: bytes) -> None:
        if intake.on_card_document(slot, raw) is not None:
            stored.set()

    callbacks = CardCallbacks(on_document=on_document, on_stats=lambda s, st: stats.append(st))
    slot = EMULATION_SLOTS[0]
    latencies: list[float] = []
    exchange: list[float] = []
    try:
        with PcscSlots(callbacks, reader_slot_names(), only_named=True, wait_ms=200) as watcher:
            watcher.ready.wait(5)
            for i in range(reads + 2):  # the first two warm up pcscd and the reader thread
                stored.clear()
                n = len(stats)
                card = VirtualType4Card(card_message(document(i + 1)), port=slot.port)
                started = time.perf_counter()
                card.insert()
                ok = stored.wait(10)
                elapsed = time.perf_counter() - started
                card.remove()
                if not ok:
                    raise RuntimeError(f"card read {i} was not stored within 10 s")
                time.sleep(0.15)  # let pcscd see the removal before the next card
                if i >= 2 and len(stats) > n:
                    latencies.append(elapsed)
                    exchange.append(stats[n].exchange_seconds)
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

    result = {
        "reads": len(latencies),
        "present_to_stored_p50_ms": _pct(latencies, 0.5) * 1000,
        "present_to_stored_p99_ms": _pct(latencies, 0.99) * 1000,
        "apdu_exchange_p50_ms": statistics.median(exchange) * 1000,
        "ratio_p50": _pct(latencies, 0.5) / statistics.median(exchange),
        "signature_checks_per_s": per_second,
    }
    print_fn(f"card present -> change stored (real pcscd + vpcd, {result['reads']} reads): "
             f"p50 {result['present_to_stored_p50_ms']:.1f} ms, p99 {result['present_to_stored_p99_ms']:.1f} ms")
    print_fn(f"  bare APDU exchange of the same read: p50 {result['apdu_exchange_p50_ms']:.1f} ms "
             f"(present->stored is {result['ratio_p50']:.1f}x the APDU time)")
    print_fn(f"document verification (2 Ed25519 signatures + all checks): {per_second:,.0f} /s")
    return result


if __name__ == "__main__":
    run_card_bench()


def cmd_bench(args) -> int:
    run_card_bench(print, reads=args.reads)
    return 0
