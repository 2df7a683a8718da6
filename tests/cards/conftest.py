"""Fixtures for contract cards: a small PKI, a real pcscd with three vpcd slots, free nfcpy udp ports."""
from __future__ import annotations

import socket
from typing import Callable

import pytest
from cardkit import CertifiedCompany, Events, Pki, certified_company, new_pki

from appliance.domain import Role
from devkit.ports import free_port


@pytest.fixture(scope="session")
def pki() -> Pki:
    return new_pki()


@pytest.fixture(scope="session")
def make_company(pki: Pki) -> Callable[..., CertifiedCompany]:
    return lambda code="CHUGOKU-EP", role=Role.SUPPLY, **window: certified_company(pki.root, code, "会社", role, **window)


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
def udp_port() -> int:
    """A free UDP port on localhost for one nfcpy udp link."""
    return free_port(socket.SOCK_DGRAM)
