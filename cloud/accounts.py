"""Operators' accounts for the outage manager's API (and the operators' web pages): a name, a role,
and a salted scrypt hash of the password; never the password itself.

``operator`` may write (status, expected restoration, DA events, planned outages, registrations);
``viewer`` may only read. The accounts file is JSON, mode 0600; `smartmeter cloud operator add`
reads the password from the terminal or standard input, never from the command line.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from appliance.config import read_secret
from appliance.errors import ConfigError

from .pki import write_private

Role = Literal["operator", "viewer"]
ROLES: tuple[str, ...] = ("operator", "viewer")
_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms per check on one core here


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, _unb64(digest))


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: str


class Accounts:
    """The accounts file. A missing file is no accounts: every write is then refused."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        try:
            raw = json.loads(read_secret(self.path, "operator accounts"))
            return {a["name"]: Account(a["name"], a["role"], a["password_hash"]) for a in raw["accounts"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{self.path}: not an accounts file ({exc})") from None

    def add(self, name: str, role: str, password: str) -> None:
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: use one of {', '.join(ROLES)}")
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"operator name {name!r}: use 1-64 of A-Z a-z 0-9 _ -")
        if len(password) < 12:
            raise ConfigError("a password needs at least 12 characters")
        accounts = self.load()
        accounts[name] = Account(name, role, hash_password(password))
        write_private(self.path, json.dumps({"accounts": [asdict(a) for a in accounts.values()]}, indent=1).encode())

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account, if the password is its own; None otherwise (after the same work either way)."""
        account = self.load().get(name)
        if account is None:
            check_password(password, _DUMMY)  # same cost for an unknown name: no name probing by timing
            return None
        return account if check_password(password, account.password_hash) else None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


_DUMMY = hash_password(secrets.token_hex(16))


DEFAULT_FILE = Path("/var/lib/smartmeter/operators.json")


def cmd_operator_add(args) -> int:
    import getpass
    import sys

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {args.name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    Accounts(args.accounts).add(args.name, args.role, password)
    print(f"operator {args.name} ({args.role}) saved in {args.accounts}")
    return 0


def cmd_operator_list(args) -> int:
    for account in Accounts(args.accounts).load().values():
        print(f"{account.name}\t{account.role}")
    return 0


def register(groups) -> None:
    from argparse import RawDescriptionHelpFormatter

    p = groups["cloud"].add_parser(
        "operator", help="operators' accounts for the outage manager's API (operator or viewer)",
        description="Add or list the operators who may use the outage manager's API. The password is read from the "
                    "terminal, or one line of standard input; never from the command line.",
        epilog="examples:\n  smartmeter cloud operator add tanaka --role operator\n"
               "  printf '%s\\n' \"$PW\" | smartmeter cloud operator add ops-bot --role viewer\n",
        formatter_class=RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="add|list")
    add = sub.add_parser("add", help="add an operator or set a new password")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    add.add_argument("--accounts", type=Path, default=DEFAULT_FILE, help=f"the accounts file (default {DEFAULT_FILE})")
    add.set_defaults(func=cmd_operator_add)
    ls = sub.add_parser("list", help="the operators and their roles")
    ls.add_argument("--accounts", type=Path, default=DEFAULT_FILE)
    ls.set_defaults(func=cmd_operator_list)
