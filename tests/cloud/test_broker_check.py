"""`smartmeter broker check` against the real Mosquitto: every feature there when it is set up by
`smartmeter broker init`, and the matching checks failing when a setting is taken out."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloud.broker import BrokerDir, BrokerSetup, Party
from devkit.mosquitto import LocalMosquitto
from devkit.ports import free_port
from smartmeter.cli import main

PROBE = (Party("meter", "PROBE-0001"), Party("company", "PROBE-CO"), Party("operator", "probe-op-1"),
         Party("operator", "probe-op-2"))
FEATURES = ["MQTT 5 sign-in", "refusals say why", "persistent session", "will delay", "retained messages",
            "shared subscriptions", "unacknowledged messages in flight", "topic rules (ACL)", "packet size limit",
            "client id takeover"]


def check(capsys, folder: Path) -> tuple[int, dict[str, str]]:
    """Run the command with the probe parties' settings files: its exit code and each feature's word."""
    files = [str(folder / "parties" / f"{p.name}.toml") for p in PROBE]
    code = main(["broker", "check", "--meter", files[0], "--company", files[1], "--operator", files[2],
                 "--operator", files[3]])
    lines = capsys.readouterr().out.splitlines()
    verdicts = {line[8:].split(":", 1)[0]: line[:6].strip() for line in lines if line[:6] in ("ok    ", "FAILED")}
    return code, verdicts


@pytest.mark.parametrize("tls", [False, True], ids=["password", "tls"])
def test_a_broker_set_up_by_the_project_has_every_feature(tmp_path, capsys, tls):
    with LocalMosquitto(workdir=tmp_path / "m", parties=PROBE, tls=tls) as broker:
        code, verdicts = check(capsys, broker.workdir / "broker")
    assert verdicts == {f: "ok" for f in FEATURES}
    assert code == 0


def test_a_broker_without_acls_a_size_limit_or_fixed_client_ids_fails_those_checks(tmp_path, capsys):
    port = free_port()
    folder = BrokerDir(tmp_path / "m" / "broker")
    folder.init(BrokerSetup(port, "localhost", "127.0.0.1", False, PROBE), run_as="root" if os.geteuid() == 0 else None)
    conf = folder.path / "mosquitto.conf"
    planted = ("acl_file", "max_packet_size", "use_username_as_clientid")
    conf.write_text("".join(line for line in conf.read_text().splitlines(keepends=True) if not line.startswith(planted)))
    with LocalMosquitto(port=port, workdir=tmp_path / "m"):
        code, verdicts = check(capsys, folder.path)
    assert code == 1
    assert {f for f, v in verdicts.items() if v == "FAILED"} == {"topic rules (ACL)", "packet size limit",
                                                                 "client id takeover"}
    assert set(verdicts) == set(FEATURES)
