"""``smartmeter card`` and ``smartmeter sim card`` as a company and the demo run them (subprocesses)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMARTMETER = Path(sys.executable).with_name("smartmeter")
BASE = [str(SMARTMETER)]


def run(*args: str, env: dict[str, str] | None = None, ok: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    proc = subprocess.run([*BASE, *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if ok:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    run("card", "keys", "registry", "--dir", str(d))
    run("card", "keys", "company", "--dir", str(d), "--registry-key", str(d / "registry.key"),
        "--code", "CHUGOKU-EP", "--name", "中国電力", "--role", "supply")
    return d


def issue(company: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("card", "issue", "--key", str(company / "CHUGOKU-EP.key"), "--cert", str(company / "CHUGOKU-EP.cert"),
               "--server", "mqtts://broker.example:8883", "--data-types", "time,power,energy",
               "--switch", "weekly:mon@22:00,sat@07:00", "--meter-id", "MTR-0001", "-o", str(out),
               "--ndef", str(out.with_suffix(".ndef")), *extra)


def test_issue_then_verify_prints_the_contents_and_every_check(company, tmp_path):
    out = issue(company, tmp_path / "night.cose", "--serial", "3").stdout
    assert "of 888 bytes" in out
    good = run("card", "verify", str(tmp_path / "night.ndef"), "--root", str(company / "registry.pub"),
               "--meter-id", "MTR-0001", "--last-serial", "2")
    assert "VALID" in good.stdout and "weekly: Mon 22:00, Sat 07:00" in good.stdout and "中国電力" in good.stdout
    assert good.stdout.count("ok  ") == 10


def test_verify_says_why_a_card_is_not_valid(company, tmp_path):
    issue(company, tmp_path / "night.cose", "--serial", "3")
    bad = run("card", "verify", str(tmp_path / "night.cose"), "--root", str(company / "registry.pub"),
              "--meter-id", "MTR-0001", "--last-serial", "3", ok=False)
    assert bad.returncode == 1
    assert "NOT VALID" in bad.stdout and "FAIL serial" in bad.stdout and "理由: 使用済み" in bad.stdout


def test_issue_refuses_bad_input_in_one_line(company, tmp_path):
    bad = run("card", "issue", "--key", str(company / "CHUGOKU-EP.key"), "--cert", str(company / "CHUGOKU-EP.cert"),
              "--data-types", "time,smell", "--serial", "1", "-o", str(tmp_path / "x.cose"), ok=False)
    assert bad.returncode == 2 and "unknown data type 'smell'" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.usefixtures("pcscd")
def test_sim_insert_then_card_read_in_a_pcsc_slot_and_the_nfc_slot(company, tmp_path):
    env = {"SMARTMETER_CARD_SIM_SOCKET": str(tmp_path / "sim.sock")}
    issue(company, tmp_path / "night.cose", "--serial", "5")
    try:
        run("sim", "card", "insert", "--slot", "1", str(tmp_path / "night.ndef"), env=env)
        run("sim", "card", "insert", "--slot", "4", str(tmp_path / "night.cose"), env=env)
        status = run("sim", "card", "status", env=env).stdout
        assert "slot 1: pcsc" in status and "slot 2: pcsc" in status and "empty" in status
        for slot in ("1", "4"):
            read = run("card", "read", "--slot", slot, "--root", str(company / "registry.pub"),
                       "--meter-id", "MTR-0001", env=env)
            assert "VALID" in read.stdout and "serial       5" in read.stdout
        run("sim", "card", "remove", "--slot", "1", env=env)
        empty = run("card", "read", "--slot", "1", "--root", str(company / "registry.pub"), "--wait", "0.5",
                    env=env, ok=False)
        # pcscd notices a removal at its next poll; a read just before that finds the card gone mid-read
        assert empty.returncode == 2 and any(w in empty.stderr for w in ("no card", "stopped answering", "removed"))
    finally:
        run("sim", "card", "stop", env=env)


def test_help_has_examples():
    assert "examples:" in run("card", "issue", "--help").stdout
    assert "slot" in run("sim", "card", "--help").stdout
