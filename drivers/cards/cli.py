"""``smartmeter card ...`` (a company's tool) and ``smartmeter sim card ...`` (the card emulator).

Hardware modules (pyscard, nfcpy) are imported only by the commands that use a reader.
"""
from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.clock import JST, iso, parse_iso
from appliance.datatypes import UnknownDataType, parse_data_types
from appliance.domain import Action, Company, Role, SwitchTime, WeeklySlot
from appliance.errors import ConfigError
from appliance.trust import keys
from appliance.trust.certificate import GridRole, certified_role, issue_certificate, parse_certificate
from appliance.trust.document import DAYS, HHMM, ContractDocument, issue_document
from appliance.trust.verify import Explanation, explain_document

from .ndef import MAX_MESSAGE, card_message, document_from_message
from .sim_cli import read_file as _read
from .sim_cli import register_sim

RAW = argparse.RawDescriptionHelpFormatter


def register(groups: dict[str, Any]) -> None:
    _register_card(groups["card"])
    register_sim(groups["sim"])


# --- smartmeter card ---

def _register_card(sub: Any) -> None:
    p = sub.add_parser("keys", help="make registry / company keys and certificates (demo and tests)",
                       formatter_class=RAW,
                       description="Make the registry root key, or a company key with its registry-signed "
                                   "certificate. Private keys are written owner-only (demo key store, not an HSM).",
                       epilog="""examples:
  smartmeter card keys registry --dir keys/
  smartmeter card keys company --dir keys/ --registry-key keys/registry.key \\
      --code CHUGOKU-EP --name 中国電力 --role supply --days 365""")
    ks = p.add_subparsers(dest="which", metavar="registry|company", required=True)
    r = ks.add_parser("registry", help="the registry root key: registry.key (secret), registry.pub (to every meter)")
    r.add_argument("--dir", type=Path, required=True)
    r.set_defaults(func=cmd_keys_registry)
    c = ks.add_parser("company", help="a company key and its registry-signed certificate: CODE.key, CODE.cert")
    c.add_argument("--dir", type=Path, required=True)
    c.add_argument("--registry-key", type=Path, required=True, help="the registry's private key (registry.key)")
    c.add_argument("--code", required=True, help="company code, [A-Za-z0-9_-]{1,32}")
    c.add_argument("--name", required=True, help="company name as the household sees it")
    c.add_argument("--role", choices=[r.value for r in Role] + [GridRole.GRID_OPERATOR.value], required=True,
                   help="supply or data company, or grid_operator (signs breaker commands only)")
    c.add_argument("--days", type=int, default=365, help="certificate lifetime (default 365)")
    c.add_argument("--not-before", help="ISO-8601 start (default: now)")
    c.set_defaults(func=cmd_keys_company)

    p = sub.add_parser("issue", help="sign a contract change document", formatter_class=RAW,
                       description="Sign contract change data (56B/56C) with the company key. The company code, "
                                   "name and role come from the certificate.",
                       epilog="""switch forms:
  --switch immediate                        when the household selects the card
  --switch 2026-12-01T00:00+09:00            at a date-time (with offset)
  --switch weekly:mon@22:00,sat@07:00        every week (JST), e.g. a night tariff

examples:
  smartmeter card issue --key keys/CHUGOKU-EP.key --cert keys/CHUGOKU-EP.cert \\
      --server mqtts://broker.example:8883 --data-types time,power,energy \\
      --switch weekly:mon@22:00 --serial 1 -o night.cose --ndef night.ndef
  smartmeter card issue --key keys/DATA-A.key --cert keys/DATA-A.cert --action abolish \\
      --switch immediate --serial 7 --meter-id MTR-0001 -o end.cose""")
    p.add_argument("--key", type=Path, required=True, help="the company's private key")
    p.add_argument("--cert", type=Path, required=True, help="the company's certificate")
    p.add_argument("--action", choices=[a.value for a in Action], default="contract")
    p.add_argument("--server", default="", help="the company server's address, shown to the household")
    p.add_argument("--data-types", default="", help="comma-separated: time,power,energy,export_energy,...")
    p.add_argument("--switch", default="immediate", help="immediate | ISO-8601 | weekly:DAY@HH:MM,...")
    p.add_argument("--menu", help="tariff menu code (needed for --action menu)")
    p.add_argument("--meter-id", help="bind the document to one meter")
    p.add_argument("--serial", type=int, required=True, help="per company, strictly increasing")
    p.add_argument("--valid-days", type=float, default=90, help="days until the document expires (default 90)")
    p.add_argument("--send-interval", type=int, help="seconds between sends to the company")
    p.add_argument("--issued-at", help="ISO-8601 (default: now)")
    p.add_argument("-o", "--out", type=Path, required=True, help="the signed document (COSE_Sign1)")
    p.add_argument("--ndef", type=Path, help="also write the card's NDEF message (the card image)")
    p.set_defaults(func=cmd_issue)

    p = sub.add_parser("write", help="write a document to a card, or make the card image", formatter_class=RAW,
                       description="FILE is a signed document (from `card issue`) or an NDEF card image.",
                       epilog="""examples:
  smartmeter card write night.cose --image night.ndef     card image for `sim card insert`
  smartmeter card write night.cose --slot 1               through PC/SC (emulation slot 1)
  smartmeter card write night.cose --reader "ACS ACR122U PICC Interface 00 00"
  smartmeter card write night.cose --nfc usb              a tag on a USB NFC reader""")
    p.add_argument("file", type=Path)
    _target_args(p)
    p.add_argument("--image", type=Path, help="write the NDEF message to this file instead of a card")
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("read", help="read a card from a slot and verify it", formatter_class=RAW,
                       description="Read the card, print what it says and whether (and why) a meter accepts it.",
                       epilog="""examples:
  smartmeter card read --slot 1 --root keys/registry.pub --meter-id MTR-0001
  smartmeter card read --nfc usb --root keys/registry.pub""")
    _target_args(p)
    _verify_args(p)
    p.add_argument("--wait", type=float, default=5.0, help="seconds to wait for a card (default 5)")
    p.set_defaults(func=cmd_read)

    p = sub.add_parser("verify", help="verify a document or card image file", formatter_class=RAW,
                       epilog="""examples:
  smartmeter card verify night.cose --root keys/registry.pub
  smartmeter card verify night.ndef --root keys/registry.pub --meter-id MTR-0001 --last-serial 3""")
    p.add_argument("file", type=Path)
    _verify_args(p)
    p.set_defaults(func=cmd_verify)


def _target_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--slot", help="emulation slot 1-3 (PC/SC) or 4 (NFC udp)")
    g.add_argument("--reader", help="a PC/SC reader name")
    g.add_argument("--nfc", metavar="DEVICE", help="an nfcpy device: usb, usb:054c:06c3, tty:AMA0:pn532, udp:localhost:54321")


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", type=Path, required=True, help="the registry public key the meter trusts")
    p.add_argument("--meter-id", help="check the binding against this meter")
    p.add_argument("--last-serial", type=int, help="the last serial this meter saw from the company")
    p.add_argument("--now", help="check as of this ISO-8601 time (default: now)")


def cmd_keys_registry(args: argparse.Namespace) -> int:
    key = keys.generate()
    keys.save_private(key, args.dir / "registry.key")
    keys.save_public(key, args.dir / "registry.pub")
    print(f"registry root key: {args.dir / 'registry.key'} (keep secret)")
    print(f"trust anchor for meters: {args.dir / 'registry.pub'}")
    return 0


def cmd_keys_company(args: argparse.Namespace) -> int:
    registry = keys.load_private(args.registry_key)
    key = keys.generate()
    start = _time(args.not_before) if args.not_before else _now()
    cert = issue_certificate(registry, company_code=args.code, name=args.name, role=certified_role(args.role),
                             public_key=key.public_key(), not_before=start,
                             not_after=start + timedelta(days=args.days))
    keys.save_private(key, args.dir / f"{args.code}.key")
    (args.dir / f"{args.code}.cert").write_bytes(cert)
    print(f"company key: {args.dir / (args.code + '.key')} (keep secret)")
    print(f"certificate: {args.dir / (args.code + '.cert')} ({len(cert)} bytes, {args.role}, "
          f"{iso(start)} .. {iso(start + timedelta(days=args.days))})")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    cert_raw = _read(args.cert)
    cert = parse_certificate(cert_raw)
    issued = _time(args.issued_at) if args.issued_at else _now()
    try:
        data_types = parse_data_types(args.data_types) if args.data_types else ()
    except UnknownDataType as exc:
        raise ConfigError(f"--data-types: {exc}") from None
    doc = ContractDocument(
        kind=cert.role, action=Action(args.action),
        company=Company(code=cert.company_code, name=cert.name, server=args.server),
        data_types=data_types, switch=parse_switch_arg(args.switch), serial=args.serial,
        issued_at=issued, expires_at=issued + timedelta(days=args.valid_days), menu=args.menu,
        meter_id=args.meter_id,
        send_interval=timedelta(seconds=args.send_interval) if args.send_interval else None)
    signed = issue_document(doc, company_key=keys.load_private(args.key), certificate=cert_raw)
    message = card_message(signed)  # refuses what would not fit a card
    args.out.write_bytes(signed)
    print(f"signed document: {args.out} ({len(signed)} bytes; NDEF message {len(message)} of {MAX_MESSAGE} bytes)")
    if args.ndef:
        args.ndef.write_bytes(message)
        print(f"card image: {args.ndef}")
    return 0


def cmd_write(args: argparse.Namespace) -> int:
    data = _read(args.file)
    from .sim import card_image

    message = card_image(data)
    document_from_message(message)  # write only what a meter could read
    if args.image:
        args.image.write_bytes(message)
        print(f"card image: {args.image} ({len(message)} bytes)")
        return 0
    kind, where = _target(args)
    if kind == "pcsc":
        from .pcsc import write_card

        write_card(where, message, wait=5.0)
    else:
        _nfc_write(where, message)
    print(f"written to the card in {where} ({len(message)} bytes)")
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    kind, where = _target(args)
    if kind == "pcsc":
        from .pcsc import read_card

        message, _stats = read_card(where, wait=args.wait)
    else:
        from .nfc import read_once

        message = read_once(where, timeout=args.wait)
    print(f"card in {where}: NDEF message of {len(message)} bytes")
    return _explain_and_print(document_from_message(message), args)


def cmd_verify(args: argparse.Namespace) -> int:
    data = _read(args.file)
    if not data.startswith(b"\xd2\x84"):
        data = document_from_message(data)
    return _explain_and_print(data, args)


def _explain_and_print(raw: bytes, args: argparse.Namespace) -> int:
    now = _time(args.now) if args.now else _now()
    last = args.last_serial
    explanation = explain_document(raw, root_public_key=keys.load_public(args.root), now=now,
                                   meter_id=args.meter_id, last_serial=(lambda _c: last) if last is not None else None)
    print(describe(explanation))
    return 0 if explanation.valid else 1


def describe(ex: Explanation) -> str:
    """What the card says and why a meter would or would not take it, for people."""
    lines = [f"verdict: {'VALID, a meter would store this change' if ex.valid else 'NOT VALID, a meter stores nothing'}"]
    doc, cert = ex.document, ex.certificate
    if doc is not None:
        trust = "" if ex.valid else "  (as written on the card, not trusted)"
        lines += [f"contents{trust}:",
                  f"  company      {doc.company.code} {doc.company.name} ({doc.kind.value} company)",
                  f"  server       {doc.company.server or '-'}",
                  f"  change       {doc.kind.value} {doc.action.value}",
                  f"  data types   {', '.join(d.value for d in doc.data_types) or '-'}",
                  f"  switch       {describe_switch(doc.switch)}",
                  f"  menu         {doc.menu or '-'}",
                  f"  meter        {doc.meter_id or 'any (not bound)'}",
                  f"  serial       {doc.serial}",
                  f"  valid        {iso(doc.issued_at)} .. {iso(doc.expires_at)}"]
        if doc.send_interval:
            lines.append(f"  send every   {int(doc.send_interval.total_seconds())} s")
    if cert is not None:
        lines.append(f"certificate:   {cert.company_code} {cert.name}, {cert.role.value}, "
                     f"{iso(cert.not_before)} .. {iso(cert.not_after)}")
    lines.append("checks:")
    marks = {True: "ok  ", False: "FAIL", None: "--  "}
    lines += [f"  {marks[c.ok]} {c.name:<20} {c.detail}" for c in ex.checks]
    if ex.error is not None:
        lines += [f"reason: {ex.error.reason}", f"理由: {ex.error.reason_ja}"]
    return "\n".join(lines)


def describe_switch(switch: SwitchTime) -> str:
    if switch.immediate:
        return "immediate (when the household selects the card)"
    if switch.weekly:
        return "weekly: " + ", ".join(f"{DAYS[s.day].capitalize()} {s.at}" for s in switch.weekly) + " JST"
    return iso(switch.at) if switch.at else "-"


def parse_switch_arg(text: str) -> SwitchTime:
    if text == "immediate":
        return SwitchTime(immediate=True)
    if text.startswith("weekly:"):
        slots = []
        for part in text[len("weekly:"):].split(","):
            day, _, at = part.strip().partition("@")
            if day.lower() not in DAYS or not HHMM.fullmatch(at):
                raise ConfigError(f"--switch: {part!r} must be DAY@HH:MM with DAY one of {', '.join(DAYS)}")
            slots.append(WeeklySlot(day=DAYS.index(day.lower()), at=at))
        return SwitchTime(weekly=tuple(slots))
    return SwitchTime(at=_time(text))


def _target(args: argparse.Namespace) -> tuple[str, str]:
    if args.reader:
        return "pcsc", args.reader
    if args.nfc:
        return "nfc", args.nfc
    if args.slot:
        from .sim import SIM_SLOTS

        if args.slot not in SIM_SLOTS:
            raise ConfigError(f"--slot: {args.slot} is not a slot (slots: {', '.join(SIM_SLOTS)})")
        spec = SIM_SLOTS[args.slot]
        return spec.kind, spec.reader
    raise ConfigError("say which card: --slot N, --reader NAME or --nfc DEVICE")


def _nfc_write(device: str, message: bytes) -> None:
    import ndef as ndeflib
    import nfc

    from appliance.card_events import CardReadError

    from .nfc import ALL_TARGETS, FELICA_ONLY

    clf = nfc.ContactlessFrontend()
    if not clf.open(device):
        raise CardReadError(f"no NFC reader at {device}")
    done: dict[str, Any] = {}

    def on_connect(tag: Any) -> bool:
        try:
            if tag.ndef is None or not tag.ndef.is_writeable:
                raise CardReadError("the tag is not a writable NDEF tag")
            tag.ndef.records = list(ndeflib.message_decoder(message))
            done["ok"] = True
        except Exception as exc:
            done["error"] = exc
        return False

    try:
        clf.connect(rdwr={"targets": list(FELICA_ONLY if device.startswith("udp") else ALL_TARGETS),
                          "on-connect": on_connect, "beep-on-connect": False, "interval": 0.1, "iterations": 1},
                    terminate=lambda: bool(done))
    finally:
        clf.close()
    if "error" in done:
        raise CardReadError(f"writing the tag failed: {done['error']}")


def _time(text: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _now() -> datetime:
    return datetime.now(JST).replace(microsecond=0)


# --- smartmeter sim card ---
