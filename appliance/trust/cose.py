"""COSE_Sign1 (RFC 9052) with EdDSA/Ed25519: the envelope of certificates, documents and commands.

Only what the meter needs: one signer, alg EdDSA (-8), empty external AAD. Decoding is strict
and bounded because the bytes come from a card or the network: anything unexpected is a
:class:`MalformedDocument`, never an exception of the CBOR library.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .rejections import BadSignature, MalformedDocument

COSE_SIGN1_TAG = 18
HEADER_ALG = 1
ALG_EDDSA = -8
MAX_ENVELOPE_BYTES = 4096  # a card holds 888; a command carrying a document stays well below this


@dataclass(frozen=True)
class Sign1:
    """A decoded, not yet verified COSE_Sign1."""

    protected_bytes: bytes
    protected: dict[Any, Any]
    payload: bytes
    signature: bytes

    def verify(self, public_key: Ed25519PublicKey, *, what: str) -> None:
        try:
            public_key.verify(self.signature, _sig_structure(self.protected_bytes, self.payload))
        except InvalidSignature:
            raise BadSignature(f"the {what} signature does not match its contents (altered or forged)") from None


def _sig_structure(protected_bytes: bytes, payload: bytes) -> bytes:
    return cbor2.dumps(["Signature1", protected_bytes, b"", payload], canonical=True)


def sign1(payload: bytes, key: Ed25519PrivateKey, extra_protected: dict[Any, Any] | None = None) -> bytes:
    """Sign ``payload``; ``extra_protected`` header entries are covered by the signature too."""
    header: dict[Any, Any] = {HEADER_ALG: ALG_EDDSA, **(extra_protected or {})}
    protected_bytes = cbor2.dumps(header, canonical=True)
    signature = key.sign(_sig_structure(protected_bytes, payload))
    return cbor2.dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected_bytes, {}, payload, signature]), canonical=True)


def loads_strict(raw: bytes, *, what: str) -> Any:
    """Decode CBOR from untrusted bytes, turning every decoder failure into a plain reason."""
    if not isinstance(raw, (bytes, bytearray)):
        raise MalformedDocument(f"the {what} is not binary data")
    if len(raw) > MAX_ENVELOPE_BYTES:
        raise MalformedDocument(f"the {what} is {len(raw)} bytes, more than the {MAX_ENVELOPE_BYTES} allowed")
    try:
        return cbor2.loads(bytes(raw))
    except Exception as exc:  # the decoder raises many types for hostile input; all mean "malformed"
        raise MalformedDocument(f"the {what} is not valid CBOR ({type(exc).__name__})") from None


def decode_sign1(raw: bytes, *, what: str) -> Sign1:
    """Parse a (tagged or untagged) COSE_Sign1 and check that it claims EdDSA."""
    obj = loads_strict(raw, what=what)
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise MalformedDocument(f"the {what} is CBOR tag {obj.tag}, not a COSE_Sign1 (tag 18)")
        obj = obj.value
    if not (isinstance(obj, (list, tuple)) and len(obj) == 4):  # cbor2 yields a tuple inside a tag
        raise MalformedDocument(f"the {what} is not a COSE_Sign1 (a 4-element array)")
    protected_bytes, unprotected, payload, signature = obj
    if not all(isinstance(x, bytes) for x in (protected_bytes, payload, signature)) or not isinstance(unprotected, Mapping):
        raise MalformedDocument(f"the {what} has a COSE_Sign1 element of the wrong type")
    protected = loads_strict(protected_bytes, what=f"{what} header") if protected_bytes else {}
    if not isinstance(protected, dict):
        raise MalformedDocument(f"the {what} protected header is not a map")
    if protected.get(HEADER_ALG) != ALG_EDDSA:
        raise MalformedDocument(f"the {what} is not signed with EdDSA (alg -8)")
    if len(signature) != 64:
        raise MalformedDocument(f"the {what} signature is {len(signature)} bytes, an Ed25519 signature is 64")
    return Sign1(protected_bytes, protected, payload, signature)
