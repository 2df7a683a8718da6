"""`smartmeter bench cards` in a few rounds: both waiters read the same cards (figures are not checked)."""
from __future__ import annotations

import pytest

from smartmeter.bench.cards import run_card_bench

pytestmark = pytest.mark.usefixtures("pcscd")


def test_the_driver_and_the_bare_client_read_the_same_documents():
    lines: list[str] = []
    result = run_card_bench(lines.append, reads=2, verify_seconds=0.05, warmup=0)
    assert result["rounds"] == 2
    assert result["driver_documents"] == result["bare_documents"]
    assert len(set(result["driver_documents"])) == 2  # each round's card carries its own document
    assert any("bare pyscard client" in line for line in lines)
