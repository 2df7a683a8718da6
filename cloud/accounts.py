"""Operators' accounts for the outage manager's API (and the operators' web pages): a name, a role,
and an Argon2id hash of the password; never the password itself.

``operator`` may write (status, expected restoration, DA events, planned outages, registrations);
``viewer`` may only read. The accounts file is JSON, mode 0600; `smartmeter cloud operator add`
reads the password from the terminal or standard input, never from the command line. Hashes from
before Argon2 (salted scrypt) still sign in, and are replaced by an Argon2id hash when they do.
"""
from __future__ import annotations

import base64
import fcntl
import functools
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from appliance.config import read_secret
from appliance.errors import ConfigError

from .pki import write_private

if TYPE_CHECKING:
    from argon2 import PasswordHasher

Role = Literal["operator", "viewer"]
ROLES: tuple[str, ...] = ("operator", "viewer")

# Argon2id at OWASP's first choice (m=46 MiB, t=1, p=1; RFC 9106 section 4 leaves the cost to the
# machine): one check measured ~72 ms on this 2-core server. RFC 9106's own low-memory choice
# (64 MiB, t=3, p=4) took ~150 ms here, too slow for a login; 19 MiB, t=2 only ~31 ms.
ARGON2_TIME_COST, ARGON2_MEMORY_KIB, ARGON2_PARALLELISM = 1, 46 * 1024, 1


@functools.cache
def _hasher() -> PasswordHasher:
    # imported on first use: every install's command line loads this module, argon2-cffi comes
    # with the cloud extra
    from argon2 import PasswordHasher, Type

    return PasswordHasher(time_cost=ARGON2_TIME_COST, memory_cost=ARGON2_MEMORY_KIB,
                          parallelism=ARGON2_PARALLELISM, type=Type.ID)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def check_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored)
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a hash that just verified should be replaced: scrypt, or Argon2 below today's cost."""
    return stored.startswith("scrypt$") or _hasher().check_needs_rehash(stored)


def _check_scrypt(password: str, stored: str) -> bool:
    """A hash written before Argon2: ``scrypt$N$r$p$salt$digest``."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
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
        with self._locked():
            accounts = self.load()
            accounts[name] = Account(name, role, hash_password(password))
            self._save(accounts)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (the command line, a service's sign-ins): no change lost between them.
        The folder is locked, so no lock file needs an owner."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save(self, accounts: dict[str, Account]) -> None:
        write_private(self.path, json.dumps({"accounts": [asdict(a) for a in accounts.values()]}, indent=1).encode())

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account, if the password is its own; None otherwise (after the same work either way)."""
        account = self.load().get(name)
        if account is None:
            check_password(password, _dummy())  # same cost for an unknown name: no name probing by timing
            return None
        if not check_password(password, account.password_hash):
            return None
        if needs_rehash(account.password_hash):
            self._rehash(account, password)
        return account

    def _rehash(self, account: Account, password: str) -> None:
        """Store a new Argon2id hash of a password that just verified against an old one."""
        with self._locked():
            accounts = self.load()
            if accounts.get(account.name) != account:
                return  # changed meanwhile (a new password set): keep that
            accounts[account.name] = replace(account, password_hash=hash_password(password))
            self._save(accounts)


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@functools.cache
def _dummy() -> str:
    return hash_password(secrets.token_hex(16))


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
