"""``smartmeter broker init|add``: a Mosquitto set up for the parties of interfaces.md section 2,
with accounts, ACLs and (``--tls``) mutual TLS, secure by default.

``DIR`` holds everything an operator needs::

    DIR/mosquitto.conf        run it: mosquitto -c DIR/mosquitto.conf
    DIR/passwd, DIR/acl       the accounts (PBKDF2-SHA512 hashes) and who may read and write what
    DIR/tls/                  the CA and the broker's certificate (with --tls)
    DIR/parties/NAME.toml     per party: an [mqtt] section the meter's config and every cloud
                              command (--mqtt-config) accept as-is, beside NAME.secret (0600) and,
                              with --tls, NAME.crt / NAME.key (0600) and the CA
    DIR/broker.json           what was set up, for `broker add`

Anonymous access is off. Mosquitto's ``use_username_as_clientid`` makes each account's client id
its user name, so no party can take over another's session. A running broker re-reads the accounts
and ACLs on SIGHUP (``broker add`` says so).
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import pwd
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.config import CODE_RE, ID_RE
from appliance.errors import ConfigError
from appliance.wire import MAX_BATCH_BYTES

from .pki import CertificateAuthority, write_private

KINDS = ("meter", "company", "operator", "concentrator", "da", "simulator", "auditor", "mdms")
# Room for a concentrator's batch, the largest legitimate message, plus MQTT's own header.
MAX_PACKET_SIZE = MAX_BATCH_BYTES + 4096


@dataclass(frozen=True)
class Party:
    kind: str  # one of KINDS
    name: str  # the meter id, company code, operator's handler name or concentrator id: its user name


def acl_rules(party: Party) -> list[str]:
    """interfaces.md section 2: who may read and write what."""
    n = party.name
    if party.kind == "meter":
        return [f"topic write meters/{n}/interval", f"topic write meters/{n}/status", f"topic write meters/{n}/alerts",
                f"topic write meters/{n}/contracts", f"topic read meters/{n}/commands",
                f"topic write companies/+/meters/{n}/data", f"topic write companies/+/meters/{n}/events"]
    if party.kind == "company":
        return [f"topic read companies/{n}/#", "topic write meters/+/commands"]
    if party.kind == "operator":  # the grid operator's handlers: readings, statuses, batches, DA events
        return ["topic read meters/+/interval", "topic read meters/+/status", "topic read meters/+/alerts",
                "topic read meters/+/contracts", "topic read concentrators/+/batch", "topic read grid/da/events"]
    if party.kind == "mdms":  # the grid operator's MDMS: signed breaker commands (remote supply switching)
        return ["topic write meters/+/commands"]
    if party.kind == "da":  # the distribution automation system: outage and restoration events
        return ["topic write grid/da/events"]
    if party.kind == "simulator":  # `smartmeter sim fleet`: many meters and the DA system at once; never in production
        return ["topic write meters/+/interval", "topic write meters/+/status", "topic write meters/+/alerts",
                "topic write concentrators/+/batch",
                "topic write grid/da/events", "topic write companies/+/meters/+/data",
                "topic write companies/+/meters/+/events"]
    if party.kind == "auditor":  # a monitoring tap (the demo's live view, a test's wire spy): reads all, writes nothing
        return ["topic read #"]
    return [f"topic write concentrators/{n}/batch"]


@dataclass(frozen=True)
class BrokerSetup:
    port: int
    host: str  # the name parties connect to (in the server certificate with --tls)
    bind: str  # the listener's address
    tls: bool
    parties: tuple[Party, ...] = ()

    def to_json(self) -> dict:
        return {**asdict(self), "parties": [asdict(p) for p in self.parties]}

    @classmethod
    def from_json(cls, obj: dict) -> "BrokerSetup":
        return cls(obj["port"], obj["host"], obj["bind"], obj["tls"], tuple(Party(**p) for p in obj["parties"]))


class BrokerDir:
    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    @property
    def setup_file(self) -> Path:
        return self.path / "broker.json"

    def load(self) -> BrokerSetup:
        try:
            return BrokerSetup.from_json(json.loads(self.setup_file.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"{self.path}: not a broker folder (make one with `smartmeter broker init`)") from None

    def init(self, setup: BrokerSetup, *, run_as: str | None = None) -> None:
        if self.setup_file.exists():
            raise ConfigError(f"{self.path}: already set up; add parties with `smartmeter broker add`")
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        if setup.tls:
            ca = CertificateAuthority(self.path / "tls")
            ca.issue(self.path / "tls", "broker", server_names=tuple(dict.fromkeys((setup.host, "localhost", "127.0.0.1"))))
        self._write(BrokerSetup(setup.port, setup.host, setup.bind, setup.tls), setup.parties, run_as)

    def add(self, parties: tuple[Party, ...]) -> BrokerSetup:
        setup = self.load()
        return self._write(setup, parties, self._run_as())

    def _write(self, setup: BrokerSetup, new: tuple[Party, ...], run_as: str | None) -> BrokerSetup:
        taken = {p.name: p for p in setup.parties}
        for p in new:
            check_party(p)
            if p.name in taken:
                raise ConfigError(f"{p.kind} {p.name!r}: the name is already an account ({taken[p.name].kind})")
            taken[p.name] = p
        setup = BrokerSetup(setup.port, setup.host, setup.bind, setup.tls, setup.parties + new)
        parties_dir = self.path / "parties"
        parties_dir.mkdir(exist_ok=True)
        os.chmod(parties_dir, 0o700)
        ca = CertificateAuthority(self.path / "tls") if setup.tls else None
        hashes = self.hashes()
        for p in new:
            password = secrets.token_urlsafe(24)
            write_private(parties_dir / f"{p.name}.secret", (password + "\n").encode())
            hashes[p.name] = password_hash(password)
            if ca is not None:
                ca.issue(parties_dir, p.name)
            (parties_dir / f"{p.name}.toml").write_text(party_toml(setup, p))
        write_private(self.path / "passwd", "".join(f"{n}:{h}\n" for n, h in hashes.items()).encode())
        write_private(self.path / "acl", acl_file(setup.parties).encode())
        (self.path / "mosquitto.conf").write_text(mosquitto_conf(self.path, setup, run_as))
        self.setup_file.write_text(json.dumps({**setup.to_json(), "run_as": run_as}, indent=1))
        self._hand_to_broker(run_as)
        return setup

    def _hand_to_broker(self, run_as: str | None) -> None:
        """Started as root, mosquitto drops to its own user (``mosquitto``, or ``run_as``) before it reads
        the password, ACL and key files: give that user those files (still 0600), a way through the
        folder (0710, its group) and the state folder it writes. The parties' secrets stay root's."""
        state = self.path / "state"
        state.mkdir(exist_ok=True)
        os.chmod(state, 0o700)
        if os.geteuid() != 0:
            return  # mosquitto runs as the user who made the folder
        try:
            who = pwd.getpwnam(run_as or "mosquitto")
        except KeyError:
            return  # no such user: mosquitto stays root (it warns), and root reads everything
        if who.pw_uid == 0:
            return
        os.chown(self.path, 0, who.pw_gid)
        os.chmod(self.path, 0o710)
        for f in (state, self.path / "passwd", self.path / "acl", self.path / "tls" / "broker.key"):
            if f.exists():
                os.chown(f, who.pw_uid, who.pw_gid)

    def hashes(self) -> dict[str, str]:
        """Each account's ``$7$`` hash, by user name, as in ``passwd``."""
        try:
            lines = (self.path / "passwd").read_text().splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split(":", 1) for line in lines if ":" in line)

    def _run_as(self) -> str | None:
        return json.loads(self.setup_file.read_text()).get("run_as")


def check_party(p: Party) -> None:
    if p.kind not in KINDS:
        raise ConfigError(f"{p.kind!r} is not a party kind ({', '.join(KINDS)})")
    pattern = CODE_RE if p.kind == "company" else ID_RE
    if not pattern.match(p.name):
        raise ConfigError(f"{p.kind} {p.name!r}: use {'1-32' if p.kind == 'company' else '1-64'} of A-Z a-z 0-9 _ -")


# mosquitto_passwd's count. The passwords are 192 random bits (token_urlsafe(24)), so the count is
# not what keeps them from being guessed; emqx.conf's password_hash_algorithm names the same one.
PBKDF2_ITERATIONS = 101


def new_salt() -> bytes:
    """12 salt bytes that are also text (72 random bits): EMQX keeps a salt as text, Mosquitto as
    bytes, so this one salt lets both brokers check the same hash."""
    return secrets.token_urlsafe(9).encode()


def pbkdf2_digest(password: str, salt: bytes, iterations: int = PBKDF2_ITERATIONS) -> bytes:
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def password_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's ``$7$`` format: PBKDF2-HMAC-SHA512 with a 12-byte salt (as mosquitto_passwd writes)."""
    salt = new_salt()
    digest = pbkdf2_digest(password, salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def acl_file(parties: tuple[Party, ...]) -> str:
    out = ["# Written by `smartmeter broker`: interfaces.md section 2. Anything not listed is refused."]
    for p in parties:
        out += ["", f"# {p.kind}", f"user {p.name}", *acl_rules(p)]
    return "\n".join(out) + "\n"


def mosquitto_conf(folder: Path, setup: BrokerSetup, run_as: str | None) -> str:
    lines = [
        "# Written by `smartmeter broker`. Run: mosquitto -c " + str(folder / "mosquitto.conf"),
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {folder / 'passwd'}",
        f"acl_file {folder / 'acl'}",
        f"max_packet_size {MAX_PACKET_SIZE}",
        "max_queued_messages 0",
        "persistence true",
        f"persistence_location {folder / 'state'}/",  # the one place the broker writes
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
    ]
    if run_as:
        lines.append(f"user {run_as}")
    lines += [f"listener {setup.port} {setup.bind}",
              "# a client id is its account: no party can take over another's session",
              "use_username_as_clientid true"]
    if setup.tls:
        tls = folder / "tls"
        lines += [f"cafile {tls / 'ca.crt'}", f"certfile {tls / 'broker.crt'}", f"keyfile {tls / 'broker.key'}",
                  "require_certificate true", "tls_version tlsv1.2"]
    return "\n".join(lines) + "\n"


def party_toml(setup: BrokerSetup, p: Party) -> str:
    """The ``[mqtt]`` section for one party; relative paths are relative to this file's folder."""
    lines = ["# Written by `smartmeter broker` for " + f"{p.kind} {p.name}", "[mqtt]",
             f'host = "{setup.host}"', f"port = {setup.port}", f'username = "{p.name}"',
             f'password_file = "{p.name}.secret"', f"tls = {'true' if setup.tls else 'false'}"]
    if setup.tls:
        lines += ['ca_file = "../tls/ca.crt"', f'cert_file = "{p.name}.crt"', f'key_file = "{p.name}.key"']
    return "\n".join(lines) + "\n"


def _parties(args: argparse.Namespace) -> tuple[Party, ...]:
    return tuple(Party(kind, name) for kind in KINDS for name in (getattr(args, kind) or []))


def cmd_init(args: argparse.Namespace) -> int:
    folder = BrokerDir(args.dir)
    folder.init(BrokerSetup(args.port, args.host, args.bind, args.tls, _parties(args)), run_as=args.run_as)
    print(f"broker set up in {folder.path}: run `mosquitto -c {folder.path / 'mosquitto.conf'}`; "
          f"each party's [mqtt] settings are in {folder.path / 'parties'}/NAME.toml")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    parties = _parties(args)
    if not parties:
        raise ConfigError("broker add: name at least one --meter, --company, --operator, --concentrator, --da, "
                          "--simulator, --auditor or --mdms")
    BrokerDir(args.dir).add(parties)
    print(f"added {', '.join(f'{p.kind} {p.name}' for p in parties)}; a running broker picks them up on "
          "SIGHUP (systemctl reload mosquitto)")
    return 0


def _party_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--meter", action="append", metavar="ID", help="a meter (its meter id); repeat for more")
    p.add_argument("--company", action="append", metavar="CODE", help="a company (its company code)")
    p.add_argument("--operator", action="append", metavar="NAME",
                   help="one of the grid operator's handler processes (collector, manager, notifier ...)")
    p.add_argument("--concentrator", action="append", metavar="ID", help="a concentrator that sends batches")
    p.add_argument("--da", action="append", metavar="NAME", help="the distribution automation system's feed")
    p.add_argument("--simulator", action="append", metavar="NAME",
                   help="a fleet simulator (writes as any meter: for a test or demo broker only)")
    p.add_argument("--auditor", action="append", metavar="NAME",
                   help="a monitoring account that reads every topic and writes none (grant sparingly)")
    p.add_argument("--mdms", action="append", metavar="NAME",
                   help="the grid operator's MDMS: sends signed breaker commands to meters, reads nothing")


def register(groups) -> None:
    sub = groups["broker"]
    p = sub.add_parser("init", help="set up a Mosquitto for the meters, companies and operators",
                       description=__doc__.split("\n\n")[0],
                       epilog="example: smartmeter broker init /etc/smartmeter/broker --port 8883 --tls --host mqtt.example "
                              "--meter MTR-0001 --company TEPCO-EP --operator collector --operator manager")
    p.add_argument("dir", type=Path)
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--host", default="localhost", help="the broker's name as parties reach it (default localhost)")
    p.add_argument("--bind", default="127.0.0.1", help="the listener's address (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--tls", action="store_true", help="mutual TLS: a CA, the broker's certificate, one per party")
    p.add_argument("--run-as", help="the user mosquitto runs as (its `user` option; default mosquitto's own)")
    _party_args(p)
    p.set_defaults(func=cmd_init)
    a = sub.add_parser("add", help="add meters, companies or operators to a broker folder")
    a.add_argument("dir", type=Path)
    _party_args(a)
    a.set_defaults(func=cmd_add)
    from . import broker_check, broker_export  # their own modules: EMQX's files, and the go-live check

    broker_export.register(sub)
    broker_check.register(sub)
