"""Trust in contract change data: registry root key, company certificates, signed documents and commands.

The meter's trust anchor is the registry's Ed25519 public key. Companies hold certificates the
registry signed; they sign contract change documents (cards, remote changes) and commands
(confirmation data) as COSE_Sign1 envelopes that carry the certificate. See docs/cards.md.
"""
from __future__ import annotations

from .certificate import CompanyCertificate, issue_certificate, parse_certificate, verify_certificate
from .commands import ConfirmData, VerifiedCommand, sign_command, verify_command
from .convert import to_change
from .document import ContractDocument, issue_document
from .keys import load_private, load_public
from .rejections import (BadSignature, CertificateNotCurrent, CompanyMismatch, DocumentExpired, DocumentRejected,
                         DocumentTooLarge, MalformedDocument, NonceMismatch, NotYetValid, Replayed, RoleMismatch,
                         UntrustedCertificate, WrongMeter)
from .verify import Explanation, VerifiedDocument, explain_document, read_document, verify_document

__all__ = [
    "BadSignature", "CertificateNotCurrent", "CompanyCertificate", "CompanyMismatch", "ConfirmData",
    "ContractDocument", "DocumentExpired", "DocumentRejected", "DocumentTooLarge", "Explanation",
    "MalformedDocument", "NonceMismatch", "NotYetValid", "Replayed", "RoleMismatch", "UntrustedCertificate",
    "VerifiedCommand", "VerifiedDocument", "WrongMeter", "explain_document", "issue_certificate",
    "issue_document", "load_private", "load_public", "parse_certificate", "read_document", "sign_command",
    "to_change", "verify_certificate", "verify_command", "verify_document",
]
