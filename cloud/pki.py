"""A small certificate authority for the broker's TLS: a CA, the broker's server certificate and one
client certificate per party (meter, company, operator's handler), with the ``cryptography`` library.

EC P-256 keys, SHA-256 signatures. Private keys are written 0600; certificates 0644.
"""
from __future__ import annotations

import ipaddress
import os
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, readable by its owner only before any secret byte is written.

    Written beside it and renamed over it, so a reader (a login checking the accounts file) sees the
    old file or the new one, never half of one. A file owned by a service account stays its own when
    root writes it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600, a new name
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.exists():
                old = path.stat()
                try:
                    os.fchown(f.fileno(), old.st_uid, old.st_gid)
                except PermissionError:
                    pass  # not root: the file is ours already
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class CertificateAuthority:
    """The broker's CA in ``folder`` (``ca.crt``, ``ca.key``), created on first use."""

    def __init__(self, folder: Path, *, now: datetime | None = None, days: int = 825) -> None:
        self.folder = folder
        self.now = now or datetime.now(timezone.utc)
        self.days = days
        self.cert_path, self.key_path = folder / "ca.crt", folder / "ca.key"
        if self.cert_path.exists():
            self.key = serialization.load_pem_private_key(self.key_path.read_bytes(), None)
            self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
        else:
            self._create()

    def _create(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        # a name of its own: two broker folders' CAs must never be mistaken for each other
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"smartmeter broker CA {os.urandom(4).hex()}")])
        self.cert = (self._builder(name, name, self.key.public_key(), days=self.days * 2)
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                                  key_encipherment=False, data_encipherment=False, key_agreement=False,
                                                  key_cert_sign=True, crl_sign=True, encipher_only=False,
                                                  decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        write_private(self.key_path, _pem_key(self.key))
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, issuer: x509.Name, public_key, *, days: int) -> x509.CertificateBuilder:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number())
                .not_valid_before(self.now - timedelta(minutes=5))
                .not_valid_after(self.now + timedelta(days=days)))

    def issue(self, folder: Path, name: str, *, server_names: tuple[str, ...] = (), days: int | None = None) -> None:
        """``folder/name.crt`` and ``folder/name.key`` for a client (or, with ``server_names``, the broker)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (self._builder(subject, self.cert.subject, key.public_key(), days=self.days if days is None else days)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if server_names:
            builder = builder.add_extension(x509.SubjectAlternativeName([_alt_name(n) for n in server_names]),
                                            critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        write_private(folder / f"{name}.key", _pem_key(key))
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)
