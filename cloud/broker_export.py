"""``smartmeter broker export-emqx DIR``: the accounts and ACLs of a broker folder, for an EMQX 5 cluster.

Writes, each readable by its owner only:

    OUT/users.json   the built-in database's users: the authenticator's ``bootstrap_file`` with
                     ``bootstrap_type = hash`` (or an import with ``emqx ctl`` or the HTTP API)
    OUT/acl.conf     the authorization ``file`` source: interfaces.md section 2, as Mosquitto's ACL

deploy/emqx/emqx.conf reads them. The users keep the passwords the parties already hold: EMQX's
``pbkdf2`` with ``mac_fun = sha512`` and ``iterations = 101`` checks the digest of the Mosquitto
``$7$`` hash, written as lower-case hex, with the salt as text (emqx_passwd: ``hex(pbkdf2(...))``).
"""
from __future__ import annotations

import argparse
import base64
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.config import read_secret
from appliance.errors import ConfigError

from .broker import PBKDF2_ITERATIONS, BrokerDir, new_salt, pbkdf2_digest
from .emqx_acl import acl_conf
from .pki import write_private

SALT_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class EmqxUser:
    user_id: str
    password_hash: str  # the PBKDF2-HMAC-SHA512 digest, lower-case hex
    salt: str
    is_superuser: bool = False


def emqx_user(name: str, mosquitto_hash: str, secret_file: Path) -> EmqxUser:
    """An account's EMQX user from its ``$7$ITERATIONS$SALT$DIGEST`` hash. A salt that is not text
    (accounts made before salts were) cannot travel in EMQX's text field: the party's password,
    from its ``.secret`` file, is hashed again with a new salt."""
    try:
        _, seven, iterations, salt_b64, digest_b64 = mosquitto_hash.split("$")
        salt, digest = base64.b64decode(salt_b64, validate=True), base64.b64decode(digest_b64, validate=True)
    except ValueError:
        raise ConfigError(f"{name}: not a Mosquitto $7$ hash in passwd") from None
    if seven != "7" or int(iterations) != PBKDF2_ITERATIONS:
        raise ConfigError(f"{name}: hashed with {iterations} iterations; EMQX checks every account with "
                          f"{PBKDF2_ITERATIONS} (emqx.conf), so set a new password for it")
    if not salt or not set(salt) <= SALT_CHARS:
        salt = new_salt()
        digest = pbkdf2_digest(read_secret(secret_file, f"{name}'s password").strip(), salt)
    return EmqxUser(name, digest.hex(), salt.decode())


def export(folder: BrokerDir, out: Path) -> list[EmqxUser]:
    setup = folder.load()
    hashes = folder.hashes()
    users = [emqx_user(p.name, hashes[p.name], folder.path / "parties" / f"{p.name}.secret") for p in setup.parties]
    out.mkdir(parents=True, exist_ok=True)
    write_private(out / "users.json", (json.dumps([asdict(u) for u in users], indent=1) + "\n").encode())
    write_private(out / "acl.conf", acl_conf(setup.parties).encode())
    return users


def cmd_export_emqx(args: argparse.Namespace) -> int:
    folder = BrokerDir(args.dir)
    out = (args.out or folder.path / "emqx").resolve()
    users = export(folder, out)
    print(f"{len(users)} accounts written to {out}/users.json and {out}/acl.conf; copy them to each EMQX "
          "node's etc/ as deploy/emqx/emqx.conf names them (both 0600, owned by the emqx user)")
    return 0


def register(sub) -> None:
    p = sub.add_parser("export-emqx", help="the accounts and ACLs of a broker folder, for an EMQX 5 cluster",
                       description=__doc__.split("\n\n")[0],
                       epilog="example: smartmeter broker export-emqx /etc/smartmeter/broker --out /tmp/emqx-etc")
    p.add_argument("dir", type=Path, help="the broker folder `smartmeter broker init` made")
    p.add_argument("--out", type=Path, help="where to write users.json and acl.conf (default DIR/emqx)")
    p.set_defaults(func=cmd_export_emqx)
