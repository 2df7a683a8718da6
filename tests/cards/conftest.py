"""Fixtures for contract cards: a small PKI, a real pcscd with three vpcd slots, free nfcpy udp ports."""
from __future__ import annotations

import socket
from typing import Callable

import pytest
from cardkit import CertifiedCompany, Events, Pki, certified_company, new_pki

from appliance.domain import Role


@pytest.fixture(scope="session")
def pki() -> Pki:
    return new_pki()


@pytest.fixture(scope="session")
def make_company(pki: Pki) -> Callable[..., CertifiedCompany]:
    return lambda code="CHUGOKU-EP", role=Role.SUPPLY, **window: certified_company(pki.root, code, "会社", role, **window)


@pytest.fixture(scope="session")
def pcscd(tmp_path_factory: pytest.TempPathFactory):
    """A real pcscd offering the three vpcd slots: the running one if it has them, else one started here."""
    from drivers.cards.pcscd import EMULATION_SLOTS, Pcscd, list_readers, missing_prerequisites

    missing = missing_prerequisites()
    if missing:
        pytest.fail("PC/SC emulation is not installed: " + "; ".join(missing), pytrace=False)
    wanted = {s.reader for s in EMULATION_SLOTS}
    present = list_readers()
    if present is not None:
        if not wanted <= set(present):
            pytest.fail(f"a pcscd is already running without the emulation slots {sorted(wanted - set(present))}; "
                        "stop it, or start it as `smartmeter sim card serve` does (drivers/cards/pcscd.py)",
                        pytrace=False)
        yield None
        return
    daemon = Pcscd(tmp_path_factory.mktemp("pcscd"))
    try:
        daemon.start()
    except RuntimeError as exc:
        pytest.fail(f"could not start pcscd: {exc}", pytrace=False)
    yield daemon
    daemon.stop()


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def udp_port() -> int:
    """A free UDP port on localhost for one nfcpy udp link."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
