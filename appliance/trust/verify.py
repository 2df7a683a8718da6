"""The meter's checks on signed contract change data (a card, or a remote ``contract_change``).

A document is accepted only if every check holds, in this order:

1. it is a COSE_Sign1 signed with EdDSA, carrying a company certificate;
2. the certificate is signed by the registry (the meter's root key) and
3. is current;
4. the company's signature over the document is valid;
5. the contents are well formed, and name the certified company;
6. the company's role matches the document's kind;
7. it was not issued in the future (beyond a small clock skew) and has not expired;
8. it is bound to this meter, if it is bound at all;
9. its serial is above the last one seen from that company (no replay).

The first failing check raises its :class:`DocumentRejected` subclass; nothing is returned.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.clock import iso

from .certificate import CompanyCertificate, certified_by_registry, parse_certificate
from .cose import Sign1, decode_sign1, loads_strict
from .document import CERT_HEADER, ContractDocument
from .rejections import (CompanyMismatch, DocumentExpired, DocumentRejected, MalformedDocument, NotYetValid,
                         Replayed, RoleMismatch, WrongMeter)

CLOCK_SKEW = timedelta(minutes=5)  # a meter's clock and a company's may differ a little

LastSerial = Callable[[str], "int | None"]


@dataclass(frozen=True)
class VerifiedDocument:
    """A document that passed every check; ``raw`` is kept so the store can keep the evidence."""

    document: ContractDocument
    certificate: CompanyCertificate
    raw: bytes
    payload: dict[str, Any]
    verified_at: datetime


@dataclass
class Check:
    name: str
    ok: bool | None  # None: not reached because an earlier check failed
    detail: str = ""


@dataclass
class Explanation:
    """Every check with its outcome, and whatever could be read, for ``smartmeter card read``."""

    checks: list[Check] = field(default_factory=list)
    document: ContractDocument | None = None  # parsed contents, trustworthy only if ``valid``
    certificate: CompanyCertificate | None = None
    error: DocumentRejected | None = None
    verified: VerifiedDocument | None = None

    @property
    def valid(self) -> bool:
        return self.error is None


CHECK_NAMES = ("envelope", "certificate", "certificate current", "signature", "contents", "company",
               "role", "validity period", "meter binding", "serial")


class _Recorder:
    """Runs named checks, records each outcome, and stops at the first failure."""

    def __init__(self, explanation: Explanation | None) -> None:
        self.explanation = explanation

    def passed(self, name: str, detail: str) -> None:
        if self.explanation is not None:
            self.explanation.checks.append(Check(name, True, detail))

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except DocumentRejected as exc:
            if self.explanation is not None:
                self.explanation.checks.append(Check(name, False, exc.reason))
            raise


def open_envelope(raw: bytes, *, root_public_key: Ed25519PublicKey | bytes, now: datetime, what: str,
                  rec: _Recorder | None = None) -> tuple[Sign1, CompanyCertificate, Any]:
    """Checks 1-4 (shared by documents and commands): returns the envelope, certificate and decoded payload."""
    rec = rec or _Recorder(None)
    env = rec.run("envelope", lambda: decode_sign1(raw, what=what))
    cert_raw = rec.run("envelope", lambda: _certificate_bytes(env, what))
    rec.passed("envelope", f"COSE_Sign1, EdDSA, {len(raw)} bytes")
    cert = rec.run("certificate", lambda: certified_by_registry(cert_raw, root_public_key=root_public_key))
    rec.passed("certificate", f"{cert.company_code} ({cert.name}), role {cert.role.value}, signed by the registry")
    rec.run("certificate current", lambda: cert.check_current(now))
    rec.passed("certificate current", f"valid {iso(cert.not_before)} .. {iso(cert.not_after)}")
    rec.run("signature", lambda: env.verify(cert.key(), what=what))
    rec.passed("signature", f"signed by {cert.company_code}'s certified key")
    payload = rec.run("contents", lambda: loads_strict(env.payload, what=f"{what} contents"))
    return env, cert, payload


def _certificate_bytes(env: Sign1, what: str) -> bytes:
    cert_raw = env.protected.get(CERT_HEADER)
    if not isinstance(cert_raw, bytes):
        raise MalformedDocument(f"the {what} carries no company certificate")
    return cert_raw


def check_time_window(issued_at: datetime, expires_at: datetime, now: datetime, what: str) -> str:
    if issued_at > now + CLOCK_SKEW:
        raise NotYetValid(f"the {what} says it was issued at {iso(issued_at)}, later than now ({iso(now)})")
    if now >= expires_at:
        raise DocumentExpired(f"the {what} expired at {iso(expires_at)}")
    return f"issued {iso(issued_at)}, expires {iso(expires_at)}"


def check_company(code: str, cert: CompanyCertificate, what: str) -> str:
    if code != cert.company_code:
        raise CompanyMismatch(f"the {what} names company {code} but is signed by {cert.company_code}")
    return f"{code} is the signer"


def check_meter(bound_to: str | None, meter_id: str | None, what: str) -> str:
    if bound_to is None:
        return "not bound to one meter"
    if meter_id is None:
        return f"bound to meter {bound_to} (no meter given to compare)"
    if bound_to != meter_id:
        raise WrongMeter(f"the {what} is for meter {bound_to}, this meter is {meter_id}")
    return f"bound to this meter {meter_id}"


def verify_document(raw: bytes, *, root_public_key: Ed25519PublicKey | bytes, meter_id: str, now: datetime,
                    last_serial: LastSerial | None) -> VerifiedDocument:
    """Accept contract change data only if every check holds; otherwise raise the failing check's rejection.

    ``last_serial=None`` skips only the replay check (9): for the meter's own stored copy of a card
    it already accepted, whose serial may since have been used."""
    return _verify(raw, root_public_key, meter_id, now, last_serial, None)


def explain_document(raw: bytes, *, root_public_key: Ed25519PublicKey | bytes, now: datetime,
                     meter_id: str | None = None, last_serial: LastSerial | None = None) -> Explanation:
    """Run the same checks, recording each, and read what the document says even when it is invalid."""
    out = Explanation()
    try:
        out.verified = _verify(raw, root_public_key, meter_id, now, last_serial, out)
        out.document, out.certificate = out.verified.document, out.verified.certificate
    except DocumentRejected as exc:
        out.error = exc
        _best_effort_read(raw, out)
    done = {c.name for c in out.checks}
    out.checks += [Check(name, None, "not checked") for name in CHECK_NAMES if name not in done]
    return out


def _verify(raw: bytes, root: Ed25519PublicKey | bytes, meter_id: str | None, now: datetime,
            last_serial: LastSerial | None, explanation: Explanation | None) -> VerifiedDocument:
    rec = _Recorder(explanation)
    _env, cert, payload = open_envelope(raw, root_public_key=root, now=now, what="contract card data", rec=rec)
    doc = rec.run("contents", lambda: ContractDocument.from_payload(payload))
    rec.passed("contents", f"{doc.kind.value} {doc.action.value}, serial {doc.serial}")
    rec.passed("company", rec.run("company", lambda: check_company(doc.company.code, cert, "document")))
    rec.passed("role", rec.run("role", lambda: _check_role(doc, cert)))
    rec.passed("validity period", rec.run(
        "validity period", lambda: check_time_window(doc.issued_at, doc.expires_at, now, "document")))
    rec.passed("meter binding", rec.run("meter binding", lambda: check_meter(doc.meter_id, meter_id, "document")))
    rec.passed("serial", rec.run("serial", lambda: _check_serial(doc, last_serial)))
    return VerifiedDocument(document=doc, certificate=cert, raw=bytes(raw), payload=payload, verified_at=now)


def _check_role(doc: ContractDocument, cert: CompanyCertificate) -> str:
    if cert.role is not doc.kind:
        raise RoleMismatch(
            f"company {cert.company_code} is certified as a {cert.role.value} company "
            f"and cannot issue a {doc.kind.value} contract")
    return f"a {cert.role.value} company issuing a {doc.kind.value} contract"


def _check_serial(doc: ContractDocument, last_serial: LastSerial | None) -> str:
    if last_serial is None:
        return f"serial {doc.serial} (no history given to compare)"
    last = last_serial(doc.company.code)
    if last is not None and doc.serial <= last:
        raise Replayed(
            f"serial {doc.serial} from {doc.company.code} was already used (last seen {last}): a replayed card")
    return f"serial {doc.serial} is new (last seen {last if last is not None else 'none'})"


def read_document(raw: bytes) -> ContractDocument:
    """What a signed document says, with NO check of trust (signature, certificate, expiry): for the
    meter's records of documents verified elsewhere. Raises MalformedDocument if it is not one."""
    what = "contract card data"
    env = decode_sign1(raw, what=what)
    _certificate_bytes(env, what)
    return ContractDocument.from_payload(loads_strict(env.payload, what=f"{what} contents"))


def _best_effort_read(raw: bytes, out: Explanation) -> None:
    """Read the contents without trusting them, so the company's tool can show what a bad card says."""
    try:
        env = decode_sign1(raw, what="contract card data")
        cert_raw = env.protected.get(CERT_HEADER)
        if isinstance(cert_raw, bytes) and out.certificate is None:
            out.certificate = parse_certificate(cert_raw)
        out.document = ContractDocument.from_payload(loads_strict(env.payload, what="contents"))
    except DocumentRejected:
        pass
