"""Fixtures for confirmation, remote changes and cards into the core: a PKI, a confirming rig, pcscd."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "appliance"))  # meter_rig
sys.path.insert(0, str(Path(__file__).parents[1] / "cards"))  # cardkit

from cardkit import CertifiedCompany, certified_company  # noqa: E402
from meter_rig import Rig  # noqa: E402

from appliance.confirmation import ConfirmationSettings  # noqa: E402
from appliance.domain import Role  # noqa: E402
from appliance.trust import keys  # noqa: E402

ROLES = {"A": Role.SUPPLY, "B": Role.SUPPLY, "D": Role.DATA}


@dataclass
class Registry:
    root: object
    root_public: bytes
    companies: dict[str, CertifiedCompany]


@pytest.fixture(scope="session")
def registry() -> Registry:
    root = keys.generate()
    return Registry(root, keys.public_raw(root),
                    {code: certified_company(root, code, f"{code}社", role) for code, role in ROLES.items()})


@pytest.fixture
def make_rig(tmp_path, broker, clock, registry):
    """A rig whose company servers answer confirmations; ``answers`` per company, ``records`` configured."""
    rigs = []

    def make(answers=None, records=None, confirmation=None, breaker=None, **settings):
        from meter_rig import METER

        answers = answers or {}
        options = {code: {"key": c.key, "certificate": c.cert, "answer": answers.get(code, "records"),
                          "now": clock.now, "records": {METER: records[code]} if records and code in records else None}
                   for code, c in registry.companies.items()}
        if confirmation is None:
            confirmation = ConfirmationSettings(enabled=True, timeout=timedelta(seconds=30),
                                                retry_max=timedelta(minutes=5), **settings)

        def service_options():
            return {"root_public_key": registry.root_public, "confirmation": confirmation,
                    "breaker": breaker() if callable(breaker) else breaker}

        rig = Rig(tmp_path, broker, clock, company_options=options, service_options=service_options)
        rigs.append(rig)
        return rig

    yield make
    for r in rigs:
        r.close()
