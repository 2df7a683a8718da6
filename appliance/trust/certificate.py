"""Company certificates: the registry's signature over a company's code, name, role and key.

interfaces.md section 1 fixes the fields ``{company_code, name, role, public_key, not_before,
not_after}``. The certificate is itself a COSE_Sign1 (signed with the registry root key), so it
is small enough to travel inside every card and command.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.clock import iso
from appliance.domain import Role

from . import fields
from .cose import decode_sign1, loads_strict, sign1
from .keys import as_public_key, public_raw
from .rejections import BadSignature, CertificateNotCurrent, MalformedDocument, UntrustedCertificate


class GridRole(str, Enum):
    """The grid operator (送配電事業者, the MDMS side), certified by the same registry as the companies.

    Not a contract :class:`Role`: it contracts nothing and never receives 56D data; its certificate
    only lets it sign ``breaker`` commands (JP6794864B2: the MDMS opens and closes a meter's supply)."""

    GRID_OPERATOR = "grid_operator"


CertifiedRole = Role | GridRole


def certified_role(value: str | Role | GridRole) -> CertifiedRole:
    """A certificate's role from its text; ValueError if it is none of supply, data, grid_operator."""
    if isinstance(value, (Role, GridRole)):
        return value
    try:
        return Role(value)
    except ValueError:
        return GridRole(value)


@dataclass(frozen=True)
class CompanyCertificate:
    """A company as the registry certified it."""

    company_code: str
    name: str
    role: CertifiedRole
    public_key: bytes  # raw Ed25519, 32 bytes
    not_before: datetime
    not_after: datetime
    raw: bytes  # the COSE_Sign1 as the registry issued it

    def key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.public_key)

    def check_current(self, now: datetime) -> None:
        if now < self.not_before:
            raise CertificateNotCurrent(
                f"the certificate of company {self.company_code} is valid only from {iso(self.not_before)}")
        if now > self.not_after:
            raise CertificateNotCurrent(
                f"the certificate of company {self.company_code} expired at {iso(self.not_after)}")


def issue_certificate(registry_key: Ed25519PrivateKey, *, company_code: str, name: str, role: CertifiedRole | str,
                      public_key: Ed25519PublicKey | bytes, not_before: datetime, not_after: datetime) -> bytes:
    """The registry certifies a company (demo and tests; a real registry runs this offline)."""
    payload = {
        "company_code": company_code,
        "name": name,
        "role": certified_role(role).value,
        "public_key": public_raw(as_public_key(public_key)),
        "not_before": iso(not_before),
        "not_after": iso(not_after),
    }
    cert = sign1(cbor2.dumps(payload, canonical=True), registry_key)
    parse_certificate(cert)  # refuse to issue what a meter would refuse to read
    return cert


def parse_certificate(raw: bytes) -> CompanyCertificate:
    """Read a certificate's fields without checking who signed it (for display, and before verifying)."""
    env = decode_sign1(raw, what="company certificate")
    return _fields(loads_strict(env.payload, what="company certificate contents"), raw)


def verify_certificate(raw: bytes, *, root_public_key: Ed25519PublicKey | bytes, now: datetime) -> CompanyCertificate:
    """Accept a certificate only if the registry signed it and it is current."""
    cert = certified_by_registry(raw, root_public_key=root_public_key)
    cert.check_current(now)
    return cert


def certified_by_registry(raw: bytes, *, root_public_key: Ed25519PublicKey | bytes) -> CompanyCertificate:
    """The certificate's fields, if the registry signed them (whether it is current is checked apart)."""
    env = decode_sign1(raw, what="company certificate")
    try:
        env.verify(as_public_key(root_public_key), what="certificate")
    except BadSignature:
        raise UntrustedCertificate("the company certificate is not signed by the registry this meter trusts") from None
    return _fields(loads_strict(env.payload, what="company certificate contents"), raw)


def _fields(payload: Any, raw: bytes) -> CompanyCertificate:
    m = fields.as_map(payload, "company certificate")
    role_text = fields.required_text(m, "role")
    try:
        role = certified_role(role_text)
    except ValueError:
        raise MalformedDocument(f"certificate role {role_text!r} is not 'supply', 'data' or 'grid_operator'") from None
    key = m.get("public_key")
    if not isinstance(key, bytes) or len(key) != 32:
        raise MalformedDocument("the certificate public key is not 32 bytes of Ed25519")
    not_before, not_after = fields.timestamp(m, "not_before"), fields.timestamp(m, "not_after")
    if not_after <= not_before:
        raise MalformedDocument("the certificate ends before it begins")
    return CompanyCertificate(
        company_code=fields.required_text(m, "company_code", pattern=fields.COMPANY_CODE),
        name=fields.required_text(m, "name"),
        role=role,
        public_key=key,
        not_before=not_before,
        not_after=not_after,
        raw=bytes(raw),
    )
