"""``smartmeter doctor``: the installer's check of every part a meter's config names, in plain words.

Each probe looks and does not touch: one chip read, the card readers listed (not read), the relay's
pins opened without driving them and its feedback contact read, one login to the broker, the kernel's
clock state, the free space and the store's schema version read without opening it for writing.
The exit status is 1 when any part is wrong, so a script (or ``--json`` and a tool) can act on it.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import logging
import shutil
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from appliance.cli import add_config_arg
from appliance.clock import SystemClock
from appliance.config import MeterConfig, load_config
from appliance.errors import ConfigError

# What the mains looks like anywhere a meter is installed (100 V and 200 V in Japan, 230 V elsewhere,
# with the tolerance of a switched-mode supply), and 50 or 60 Hz with a generous margin.
VOLTAGE_RANGE_V = (80.0, 264.0)
FREQUENCY_RANGE_HZ = (45.0, 65.0)
DISK_FAIL_BYTES = 50 * 1024 * 1024  # below this the store cannot keep a week of readings safely
DISK_WARN_BYTES = 500 * 1024 * 1024
BROKER_TIMEOUT_S = 8.0
BREAKER_META = "breaker"  # the store's meta key the service mirrors the relay's state into (Store.breaker_state)


class Status(str, Enum):
    OK = "ok"
    WARN = "warn"  # works, but look at it
    FAIL = "fail"
    SKIP = "skip"  # not configured on this meter


@dataclass(frozen=True)
class Finding:
    part: str
    status: Status
    message: str


Probe = Callable[[MeterConfig], list[Finding]]


# -- the chip ------------------------------------------------------------------------------------
def check_chip(cfg: MeterConfig) -> list[Finding]:
    from .assembly import build_chip

    try:
        chip = build_chip(cfg, SystemClock(), retries=1)
    except ConfigError as exc:
        return [Finding("chip", Status.FAIL, str(exc))]
    try:
        sample = chip.read_sample()
        where = chip.describe()
    finally:
        chip.close()
    if not sample.ok:
        return [Finding("chip", Status.FAIL, f"the metering chip did not answer: {sample.error}")]
    problems = []
    if sample.voltage_v is None or not VOLTAGE_RANGE_V[0] <= sample.voltage_v <= VOLTAGE_RANGE_V[1]:
        problems.append(f"voltage {_num(sample.voltage_v, 'V')} is outside {VOLTAGE_RANGE_V[0]:.0f}-"
                        f"{VOLTAGE_RANGE_V[1]:.0f} V (is the voltage input wired to the mains?)")
    if sample.frequency_hz is not None and not FREQUENCY_RANGE_HZ[0] <= sample.frequency_hz <= FREQUENCY_RANGE_HZ[1]:
        problems.append(f"frequency {_num(sample.frequency_hz, 'Hz')} is outside {FREQUENCY_RANGE_HZ[0]:.0f}-"
                        f"{FREQUENCY_RANGE_HZ[1]:.0f} Hz")
    values = ", ".join(v for v in (_num(sample.voltage_v, "V"), _num(sample.frequency_hz, "Hz"),
                                   _num(sample.power_w, "W"), _num(_kwh(sample.import_wh_total), "kWh imported"))
                       if v != "—")
    if problems:
        return [Finding("chip", Status.FAIL, f"{where} answered, but {'; '.join(problems)}")]
    return [Finding("chip", Status.OK, f"{where} answered: {values}")]


def _kwh(wh: float | None) -> float | None:
    return None if wh is None else wh / 1000


def _num(value: float | None, unit: str) -> str:
    return "—" if value is None else f"{value:.1f} {unit}"


# -- the card readers ----------------------------------------------------------------------------
def check_cards(cfg: MeterConfig) -> list[Finding]:
    slots = cfg.cards.slots
    if not slots:
        return [Finding("cards", Status.SKIP, "no card slots configured ([[cards.slots]])")]
    out: list[Finding] = []
    pcsc = [s for s in slots if s.pcsc]
    if pcsc:
        readers, problem = pcsc_readers()
        for s in pcsc:
            if problem:
                out.append(Finding(f"card slot {s.slot}", Status.FAIL, problem))
            elif s.pcsc in readers:
                out.append(Finding(f"card slot {s.slot}", Status.OK, f"reader {s.pcsc!r} is connected"))
            else:
                found = ", ".join(repr(r) for r in readers) or "none"
                out.append(Finding(f"card slot {s.slot}", Status.FAIL,
                                   f"reader {s.pcsc!r} is not connected (readers found: {found}); plug it in, or "
                                   "copy its exact name from `pcsc_scan` into cards.slots.pcsc"))
    for s in slots:
        if s.nfc:
            ok, words = nfc_device(s.nfc)
            out.append(Finding(f"card slot {s.slot}", Status.OK if ok else Status.FAIL, words))
    return out


def pcsc_readers() -> tuple[list[str], str | None]:
    """The PC/SC reader names, or why there are none to ask."""
    try:
        from smartcard import scard
    except ImportError:
        return [], "pyscard is not installed (install the meter with scripts/install-pi)"
    hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return [], ("the card reader service (pcscd) is not running: sudo systemctl start pcscd.socket "
                    f"({scard.SCardGetErrorMessage(hresult).strip()})")
    try:
        hresult, names = scard.SCardListReaders(ctx, [])
        if hresult == scard.SCARD_E_NO_READERS_AVAILABLE:
            return [], None
        if hresult != scard.SCARD_S_SUCCESS:
            return [], f"pcscd could not list the readers: {scard.SCardGetErrorMessage(hresult).strip()}"
        return list(names), None
    finally:
        scard.SCardReleaseContext(ctx)


def nfc_device(device: str) -> tuple[bool, str]:
    try:
        import nfc
    except ImportError:
        return False, "nfcpy is not installed (install the meter with scripts/install-pi)"
    clf = nfc.ContactlessFrontend()
    try:
        opened = clf.open(device)
    except OSError as exc:
        return False, f"NFC reader {device}: cannot open it ({exc}); is it plugged in, and is the user in plugdev?"
    try:
        if not opened:
            return False, f"no NFC reader at {device}: plug it in, or correct cards.slots.nfc"
        return True, f"NFC reader {device} opens: {clf.device}"
    finally:
        clf.close()


# -- the breaker relay ---------------------------------------------------------------------------
def check_breaker(cfg: MeterConfig, pin_factory: Any = None) -> list[Finding]:
    b = cfg.breaker
    if b.pin is None:
        return [Finding("breaker", Status.SKIP, "no breaker relay configured (breaker.pin)")]
    from gpiozero import DigitalInputDevice, DigitalOutputDevice

    from drivers.breaker.relay import BreakerJournal, make_pin_factory

    commanded = BreakerJournal(b.journal).load()
    said = ("no state kept yet (first start)" if commanded is None
            else f"last commanded {'closed' if commanded.closed else 'open'} ({commanded.reason})")
    factory = pin_factory if pin_factory is not None else make_pin_factory(b.pin_factory)
    held = []
    try:
        # initial_value=None: the pin is claimed as it is found, so the check never switches the supply
        held.append(DigitalOutputDevice(b.pin, active_high=b.active_high, initial_value=None, pin_factory=factory))
        if b.feedback_pin is not None:
            held.append(DigitalInputDevice(b.feedback_pin, pull_up=not b.feedback_active_high, pin_factory=factory))
    except Exception as exc:  # noqa: BLE001 - gpiozero: busy, no such pin, no pin library, no permission
        for d in held:
            d.close()
        return _breaker_from_store(cfg, exc, said)
    try:
        findings = [Finding("breaker", Status.OK, f"relay output GPIO{b.pin} can be driven; {said}")]
        if b.feedback_pin is not None:
            contact = bool(held[1].value)
            words = f"feedback contact GPIO{b.feedback_pin} reads {'closed' if contact else 'open'}"
            if commanded is not None and contact != commanded.closed:
                findings.append(Finding("breaker feedback", Status.FAIL,
                                        f"{words}, but the relay was commanded {'closed' if commanded.closed else 'open'}"
                                        ": check the relay, its supply and the auxiliary contact's wiring"))
            else:
                findings.append(Finding("breaker feedback", Status.OK, words))
        return findings
    finally:
        for d in reversed(held):
            d.close()


def _breaker_from_store(cfg: MeterConfig, exc: Exception, said: str) -> list[Finding]:
    """The pins are held (by the running meter service): what that service last saw, from its store."""
    state = None
    if cfg.meter.store.exists():
        try:
            db = _read_only(cfg.meter.store)
            try:
                row = db.execute("SELECT value FROM meta WHERE key=?", (BREAKER_META,)).fetchone()
            finally:
                db.close()
            state = json.loads(row[0]) if row else None
        except sqlite3.Error:
            state = None
    if "busy" in str(exc).lower() and isinstance(state, dict):
        contact = state.get("contact")
        if state.get("contact_fault"):
            return [Finding("breaker", Status.FAIL, f"the meter service holds GPIO{cfg.breaker.pin}; it reports the "
                            f"feedback contact {'closed' if contact else 'open'} against a commanded "
                            f"{'closed' if state.get('closed') else 'open'} relay: check the relay and its wiring")]
        return [Finding("breaker", Status.OK, f"the meter service holds GPIO{cfg.breaker.pin}; it reports the relay "
                        f"{'closed' if state.get('closed') else 'open'}" +
                        ("" if contact is None else ", feedback contact agreeing"))]
    return [Finding("breaker", Status.FAIL, f"cannot use GPIO{cfg.breaker.pin} for the relay: {exc}; {said}")]


# -- the broker ----------------------------------------------------------------------------------
def check_broker(cfg: MeterConfig, timeout: float = BROKER_TIMEOUT_S) -> list[Finding]:
    """One MQTT 5 login with the meter's account, as the service does. (The broker gives each account
    one session: a running meter service is logged out for a moment and reconnects by itself.)"""
    import paho.mqtt.client as paho

    from appliance.mqtt_settings import apply_settings, describe_refusal, diagnose

    m = cfg.mqtt
    where = f"{m.host}:{m.port}"
    result: dict[str, Any] = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result["reason"] = reason_code
        done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"meter-{cfg.meter.id}", protocol=paho.MQTTv5)
    client.on_connect = on_connect
    client.on_connect_fail = lambda *_: done.set()
    try:
        apply_settings(client, m)
        client.connect_async(m.host, m.port, keepalive=10)
        client.loop_start()
        done.wait(timeout)
    except (OSError, ValueError) as exc:
        return [Finding("broker", Status.FAIL, f"cannot set up the connection to {where}: {exc}")]
    finally:
        if result.get("reason") is not None and not result["reason"].is_failure:
            client.disconnect()
        client.loop_stop()
    reason = result.get("reason")
    if reason is None:
        return [Finding("broker", Status.FAIL, diagnose(m.host, m.port, m, timeout=min(timeout, 5.0))[1])]
    if reason.is_failure:
        return [Finding("broker", Status.FAIL, f"the broker {where} refused the login: {describe_refusal(str(reason))} "
                        "(check mqtt.username and mqtt.password_file)")]
    account = f" as {m.username}" if m.username else " without an account"
    security = (" over TLS, broker certificate verified" + (", with this meter's certificate" if m.cert_file else "")
                if m.tls else " without TLS")
    findings = [Finding("broker", Status.OK, f"logged in to {where}{account}{security}")]
    if not m.tls and m.host not in ("localhost", "127.0.0.1", "::1"):
        findings.append(Finding("broker TLS", Status.WARN, f"the link to {m.host} is not encrypted: set mqtt.tls = true"))
    return findings


# -- the clock -----------------------------------------------------------------------------------
TIME_ERROR = 5  # adjtimex: the clock is not synchronised (STA_UNSYNC)


def kernel_clock_synchronised() -> bool | None:
    """What ``timedatectl``'s NTPSynchronized reports, read where it reads it: adjtimex(2) without changes.
    None where the call is not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex (208 bytes on 64-bit), modes 0: read only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != TIME_ERROR


def check_clock(cfg: MeterConfig, synchronised: Callable[[], bool | None] | None = None) -> list[Finding]:
    state = (synchronised or kernel_clock_synchronised)()
    if state is None:
        return [Finding("clock", Status.WARN, "cannot tell whether the clock is synchronised (see timedatectl)")]
    if not state:
        return [Finding("clock", Status.FAIL, "the clock is not synchronised with a time server: readings and switch "
                        "times would be wrong; check the network and `timedatectl timesync-status`")]
    return [Finding("clock", Status.OK, "the clock is synchronised with a time server")]


# -- disk and store ------------------------------------------------------------------------------
def check_disk(cfg: MeterConfig) -> list[Finding]:
    folder = cfg.meter.store.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    usage = shutil.disk_usage(folder)
    words = f"{_size(usage.free)} free of {_size(usage.total)} on {folder}"
    if usage.free < DISK_FAIL_BYTES:
        return [Finding("disk", Status.FAIL, f"only {words}: free some space (old logs: journalctl --vacuum-size)")]
    if usage.free < DISK_WARN_BYTES:
        return [Finding("disk", Status.WARN, f"only {words}")]
    return [Finding("disk", Status.OK, words)]


def _size(n: int) -> str:
    return f"{n / 1024 ** 3:.1f} GB" if n >= 1024 ** 3 else f"{n / 1024 ** 2:.0f} MB"


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)


def check_store(cfg: MeterConfig) -> list[Finding]:
    from appliance.store_schema import LATEST

    path = cfg.meter.store
    if not path.exists():
        return [Finding("store", Status.OK, f"no store yet at {path}: the meter service creates it at its first start")]
    try:
        db = _read_only(path)
        try:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error as exc:
        return [Finding("store", Status.FAIL, f"cannot read the store {path}: {exc} (run doctor with sudo)")]
    if version > LATEST:
        return [Finding("store", Status.FAIL, f"the store {path} was written by newer software (schema version "
                        f"{version}; this software knows up to {LATEST}): the meter will not start; install the "
                        "newer software again, or restore a backup made by this version")]
    if version < LATEST:
        return [Finding("store", Status.OK, f"store {path} at schema version {version}; the meter service upgrades "
                        f"it to {LATEST} at its next start")]
    return [Finding("store", Status.OK, f"store {path} at schema version {version} (current)")]


PROBES: tuple[Probe, ...] = (check_chip, check_cards, check_breaker, check_broker, check_clock, check_disk, check_store)


def run_checks(cfg: MeterConfig, probes: tuple[Probe, ...] = PROBES) -> list[Finding]:
    findings: list[Finding] = []
    for probe in probes:
        try:
            findings += probe(cfg)
        except Exception as exc:  # noqa: BLE001 - one broken probe must not hide the others' answers
            part = probe.__name__.removeprefix("check_")
            findings.append(Finding(part, Status.FAIL, f"the check itself failed: {type(exc).__name__}: {exc}"))
    return findings


MARKS = {Status.OK: "OK  ", Status.WARN: "WARN", Status.FAIL: "FAIL", Status.SKIP: " -- "}


def report(config: Path, meter_id: str | None, findings: list[Finding], as_json: bool) -> int:
    failed = [f for f in findings if f.status is Status.FAIL]
    if as_json:
        print(json.dumps({"config": str(config), "meter_id": meter_id, "ok": not failed,
                          "checks": [{**asdict(f), "status": f.status.value} for f in findings]},
                         ensure_ascii=False, indent=2))
    else:
        print(f"smartmeter doctor: {config}" + (f" (meter {meter_id})" if meter_id else ""))
        width = max(len(f.part) for f in findings)
        for f in findings:
            print(f"  {MARKS[f.status]}  {f.part:<{width}}  {f.message}")
        if failed:
            print(f"{len(failed)} part(s) need attention: {', '.join(f.part for f in failed)}")
        else:
            print("every configured part works")
    return 1 if failed else 0


def cmd_doctor(args: argparse.Namespace) -> int:
    if not getattr(args, "verbose", False):  # each finding says it once; the drivers' warnings would repeat it
        logging.getLogger().setLevel(logging.ERROR)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return report(Path(args.config), None, [Finding("config", Status.FAIL, str(exc))], args.json)
    return report(Path(args.config), cfg.meter.id, run_checks(cfg), args.json)


def register(groups) -> None:
    p = groups["doctor"]
    p.description = ("Check every part the meter's config names and say in plain words what works: the chip "
                     "(one read), the card readers, the breaker relay and its feedback contact, the broker (login, "
                     "TLS), the clock, disk space and the store. Exit status 1 when any part is wrong.")
    add_config_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_doctor)

