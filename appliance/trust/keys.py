"""Ed25519 keys on disk: the registry's root key and the companies' signing keys (PEM files)."""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.errors import ConfigError


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_raw(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    """The 32 raw bytes of a public key, as carried in a company certificate."""
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def save_private(key: Ed25519PrivateKey, path: Path) -> None:
    """Write a private key readable by its owner only (a demo key store, not an HSM)."""
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def save_public(key: Ed25519PublicKey | Ed25519PrivateKey, path: Path) -> None:
    if isinstance(key, Ed25519PrivateKey):
        key = key.public_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def load_private(path: Path | str) -> Ed25519PrivateKey:
    data = _read(path, "private key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: not an Ed25519 key")
    return key


def load_public(path: Path | str) -> Ed25519PublicKey:
    """Load the registry root public key (the meter's trust anchor) from PEM or 32 raw bytes."""
    data = _read(path, "public key")
    return public_from_bytes(data, origin=str(path))


def public_from_bytes(data: bytes, *, origin: str = "public key") -> Ed25519PublicKey:
    if len(data) == 32:
        return Ed25519PublicKey.from_public_bytes(data)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: not a PEM public key or 32 raw Ed25519 bytes ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{origin}: not an Ed25519 public key")
    return key


def as_public_key(key: Ed25519PublicKey | bytes) -> Ed25519PublicKey:
    return key if isinstance(key, Ed25519PublicKey) else public_from_bytes(bytes(key))


def _read(path: Path | str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
