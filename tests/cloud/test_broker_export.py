"""`smartmeter broker export-emqx`: the EMQX 5 files for a broker folder's accounts.

EMQX itself cannot run here, so the files are held to what can be: deploy/emqx/emqx.conf is read as
HOCON, the hashes are checked with the parameters it names, and the acl.conf rules, judged as EMQX
documents its file source, give the same answers as the real Mosquitto with the project's own ACL.
"""
from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from pathlib import Path

import pytest
from pyhocon import ConfigFactory

from cloud import emqx_acl
from cloud.broker import MAX_PACKET_SIZE, BrokerDir, BrokerSetup, Party
from cloud.broker_check import Link
from cloud.outage.collector import INFLIGHT_NEEDED
from devkit.mosquitto import LocalMosquitto
from smartmeter.cli import main

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "emqx"
PARTIES = (Party("meter", "M1"), Party("meter", "M2"), Party("company", "A"), Party("operator", "col"),
           Party("concentrator", "C1"), Party("da", "da"), Party("simulator", "sim"), Party("auditor", "aud"),
           Party("mdms", "mdms"))


@pytest.fixture(scope="module")
def conf():
    return ConfigFactory.parse_file(str(DEPLOY / "emqx.conf"))


def test_emqx_conf_reads_as_hocon_and_names_the_projects_limits(conf):
    assert conf.get("mqtt.max_packet_size") == MAX_PACKET_SIZE
    assert conf.get("mqtt.max_inflight") >= INFLIGHT_NEEDED  # a collector acknowledges after its commit
    assert conf.get("mqtt.use_username_as_clientid") is True
    assert conf.get("authorization.no_match") == "deny"
    assert [s["type"] for s in conf.get("authorization.sources")] == ["file"]
    authn = conf.get("authentication")[0]
    assert (authn["backend"], authn["bootstrap_type"]) == ("built_in_database", "hash")
    ssl = conf.get("listeners.ssl.default.ssl_options")
    assert (ssl["verify"], ssl["fail_if_no_peer_cert"]) == ("verify_peer", True)
    assert conf.get("cluster.discovery_strategy") == "static"
    assert [conf.get(f"listeners.{kind}.default.enable") for kind in ("tcp", "ws", "wss")] == [False] * 3


def test_export_writes_users_whose_hashes_check_each_partys_password(tmp_path, conf):
    folder = BrokerDir(tmp_path / "broker")
    folder.init(BrokerSetup(1883, "localhost", "127.0.0.1", False, PARTIES[:3]))
    # an account from before salts were text: its password is hashed again from its .secret file
    old_salt = b"\xff\x00,\n" + bytes(8)
    password = (folder.path / "parties" / "A.secret").read_text().strip()
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), old_salt, 101)
    passwd = folder.path / "passwd"
    passwd.write_text("".join(line if not line.startswith("A:") else
                              f"A:$7$101${base64.b64encode(old_salt).decode()}${base64.b64encode(digest).decode()}\n"
                              for line in passwd.read_text().splitlines(keepends=True)))
    assert main(["broker", "export-emqx", str(folder.path), "--out", str(tmp_path / "emqx")]) == 0

    for name in ("users.json", "acl.conf"):
        assert stat.S_IMODE((tmp_path / "emqx" / name).stat().st_mode) == 0o600, name
    users = json.loads((tmp_path / "emqx" / "users.json").read_text())
    assert [u["user_id"] for u in users] == ["M1", "M2", "A"]
    algo = conf.get("authentication")[0]["password_hash_algorithm"]
    mosquitto = dict(line.split(":", 1) for line in passwd.read_text().splitlines())
    for user in users:
        secret = (folder.path / "parties" / f"{user['user_id']}.secret").read_text().strip()
        # what EMQX's pbkdf2 does: hex(pbkdf2(mac_fun, password, salt as stored, iterations, dk_length))
        got = hashlib.pbkdf2_hmac(algo["mac_fun"], secret.encode(), user["salt"].encode(), algo["iterations"],
                                  algo["dk_length"]).hex()
        assert got == user["password_hash"] and user["is_superuser"] is False
        assert hashlib.pbkdf2_hmac(algo["mac_fun"], b"wrong", user["salt"].encode(), algo["iterations"],
                                   algo["dk_length"]).hex() != user["password_hash"]
        if user["user_id"] != "A":  # a text salt: the very hash Mosquitto checks
            _, _, _, salt, digest = mosquitto[user["user_id"]].split("$")
            assert base64.b64decode(salt).decode() == user["salt"]
            assert base64.b64decode(digest).hex() == user["password_hash"]
    assert users[2]["salt"].encode() != old_salt


def test_acl_conf_reads_as_erlang_terms_and_ends_refusing_all(tmp_path):
    rules = emqx_acl.parse(emqx_acl.acl_conf(PARTIES))
    assert rules[-1] == emqx_acl.Rule("deny", None, "all", ())
    assert all(r.permission == "allow" and r.who[0] == "user" and r.topics for r in rules[:-1])
    assert {r.who[1] for r in rules[:-1]} == {p.name for p in PARTIES}
    for bad in ('{allow, {user, "M1"}, publish, ["a"]}', '{allow, {user, "M1"}, read, ["a"]}.',
                '{allow, {user, M1}, publish, ["a"]}.', '{allow, {user, "M1"}, publish, "a"}.'):
        with pytest.raises(ValueError):
            emqx_acl.parse(bad)


def test_the_shipped_acl_conf_is_what_the_generator_writes_for_its_parties():
    text = (DEPLOY / "acl.conf").read_text()
    named = [line[3:].split(" ", 1) for line in text.splitlines() if line.startswith("%% ") and line.count(" ") == 2]
    parties = [Party(kind, name) for kind, name in named]
    assert len(parties) >= 8
    assert text.split("\n", 1)[1] == emqx_acl.acl_conf(parties)


# Concrete topics, each with a party that may publish it (so a subscriber can be sent it), and
# subscription filters wider or narrower than the rules.
TOPICS = {"meters/M1/interval": "M1", "meters/M2/interval": "M2", "meters/M1/status": "M1", "meters/M1/alerts": "M1",
          "meters/M1/contracts": "M1", "meters/M1/commands": "A", "meters/M2/commands": "mdms",
          "companies/A/meters/M1/data": "M1", "companies/B/meters/M1/events": "M1",
          "companies/A/meters/M2/events": "M2", "concentrators/C1/batch": "C1", "grid/da/events": "da"}
FILTERS = ("meters/+/interval", "meters/+/commands", "meters/#", "companies/A/#", "companies/+/meters/M1/data", "#",
           "concentrators/+/batch", "$share/g/meters/+/interval", "$share/g/meters/M1/commands", "other/+")


def test_emqx_rules_allow_and_refuse_what_mosquittos_do(tmp_path):
    """Publishing: the PUBACK of the real Mosquitto and the EMQX rules agree on every (party, topic).
    Reading: what each party receives agrees for every topic it subscribes to by name. A filter wider
    than the rules (a meter's ``meters/+/commands``) EMQX refuses at SUBSCRIBE, while Mosquitto 2.0
    grants it and delivers only what the party may read: never more than Mosquitto does; the filters
    the parties use themselves (their rules') are delivered alike."""
    rules = emqx_acl.parse(emqx_acl.acl_conf(PARTIES))

    def emqx(party: str, action: str, topic: str) -> bool:
        return emqx_acl.authorize(rules, party, party, action, topic)

    with LocalMosquitto(workdir=tmp_path / "m", parties=PARTIES) as broker:
        def link(name: str) -> Link:
            return Link(broker.settings(name)).open()

        for p in PARTIES:
            conn, mismatched = link(p.name), []
            for topic in [*TOPICS, "other/x"]:
                code = conn.publish(topic, b"x")
                if (code is not None and not code.is_failure) != emqx(p.name, "publish", topic):
                    mismatched.append(topic)
                if code is None or code.is_failure:  # Mosquitto closes the connection after a refusal
                    conn.close()
                    conn = link(p.name)
            conn.close()
            assert mismatched == [], p

        def delivered(filters: dict[str, list[str]]) -> dict[str, set[str]]:
            """Each party subscribed to its filters; every topic published once: what each received."""
            links = {name: link(name) for name in filters}
            for name, fs in filters.items():
                for f in fs:
                    links[name].subscribe(f)
            for topic, writer in TOPICS.items():
                links[writer].publish(topic, b"x")
            time.sleep(0.3)
            out = {name: {m.topic for m in c.messages} for name, c in links.items()}
            for c in links.values():
                c.close()
            return out

        by_name = delivered({p.name: list(TOPICS) for p in PARTIES})
        for p in PARTIES:
            assert by_name[p.name] == {t for t in TOPICS if emqx(p.name, "subscribe", t)}, p

        for f in FILTERS:
            got = delivered({p.name: [f.replace("$share/g/", f"$share/{p.name}/")] for p in PARTIES})
            matching = {t for t in TOPICS if emqx_acl.matches(t, emqx_acl.strip_share(f))}
            for p in PARTIES:
                by_emqx = matching if emqx(p.name, "subscribe", f) else set()
                assert got[p.name] == {t for t in matching if emqx(p.name, "subscribe", t)}, (p, f)
                assert by_emqx <= got[p.name], (p, f)
                own = {t for r in rules if r.who and r.who[1] == p.name and r.action == "subscribe" for t in r.topics}
                if emqx_acl.strip_share(f) in own:
                    assert by_emqx == got[p.name], (p, f)
