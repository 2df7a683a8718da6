"""What the touch screen tells a household after an action: a notice in plain words with the next
step, worded from the i18n table in the language shown (never an exception's English text).

A refusal from the core carries a ``code`` (:class:`appliance.errors.ChangeRejected`, the trust
checks' :class:`appliance.trust.rejections.DocumentRejected`, a card read error); :func:`refusal_key`
words it. A switch is announced in the future tense and turns to the past tense once the view shows
the contract in force (:meth:`Notice.settle`), read from the meter, not timed. No Kivy here.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from appliance.api import ContractView
from appliance.domain import SwitchTime

from .i18n import TEXTS, Texts

# a refusal's code -> the i18n key of the household's message (what happened, and what to do)
REFUSALS: dict[str, str] = {
    "past_switch_time": "refused_past",
    "untrusted_certificate": "refused_unregistered",
    "certificate_not_current": "refused_certificate_period",
    "bad_signature": "refused_tampered",
    "expired": "refused_expired",
    "not_yet_valid": "refused_not_yet_valid",
    "wrong_meter": "refused_wrong_meter",
    "replayed": "refused_used",
    "nonce_mismatch": "refused_confirmation",
    "read_failed": "refused_unreadable",
    "too_large": "refused_unreadable",
    # the card's contents cannot make a contract change
    "malformed": "refused_contents", "company_mismatch": "refused_contents", "role_mismatch": "refused_contents",
    "bad_company_code": "refused_contents", "no_data_types": "refused_contents", "no_menu": "refused_contents",
    "send_interval": "refused_contents", "measure_interval": "refused_contents",
    "not_grid_operator": "refused_not_grid",
}
REFUSED_OTHER = "refused_other"

INFO, DONE, ERROR = "info", "done", "error"


def refusal_key(code: str | None) -> str:
    """The i18n key for a refusal's code; an unknown code gets a general message with a next step."""
    return REFUSALS.get(code or "", REFUSED_OTHER)


def code_of(problem: BaseException | dict[str, Any] | None) -> str | None:
    """The code of an exception from the core, or of a card problem as :func:`ui.model.problem_of` keeps it."""
    if problem is None:
        return None
    if isinstance(problem, dict):
        return problem.get("code")
    return getattr(problem, "code", None)


@dataclass(frozen=True)
class Target:
    """The contract a switch asks for: settled once it is in force."""

    code: str
    role: str  # supply | data
    menu: str | None = None

    def in_force(self, in_force: Sequence[ContractView]) -> bool:
        return any(c.company.code == self.code and c.role.value == self.role and
                   (self.menu is None or c.menu == self.menu) for c in in_force)


@dataclass(frozen=True)
class Notice:
    """One message: ``key`` with ``args`` (names, times: the same in either language; a
    :class:`SwitchTime` is worded when shown). ``done_key`` replaces ``key`` once ``target`` is in force."""

    key: str
    args: dict[str, Any] = field(default_factory=dict)
    tone: str = INFO
    target: Target | None = None
    done_key: str | None = None

    def text(self, tx: Texts) -> str:
        args = {k: tx.switch(v) if isinstance(v, SwitchTime) else v for k, v in self.args.items()}
        return tx.t(self.key, **args)

    @property
    def waiting(self) -> bool:
        return self.target is not None and self.done_key is not None

    def settle(self, in_force: Sequence[ContractView]) -> Notice:
        """The same notice in the past tense once its contract is in force (else itself)."""
        if self.waiting and self.target.in_force(in_force):
            return replace(self, key=self.done_key, tone=DONE, target=None, done_key=None)
        return self


def refusal(problem: BaseException | dict[str, Any] | None) -> Notice:
    return Notice(refusal_key(code_of(problem)), tone=ERROR)


def switching(name: str, role: str, code: str, menu: str | None) -> Notice:
    """Announced at once: a power company is switched to, a data company starts receiving data."""
    data = role != "supply"
    return Notice("data_starting" if data else "switching", {"name": name}, INFO, Target(code, role, menu),
                  "data_started" if data else "switched")


def confirm_key(role: str) -> tuple[str, str]:
    """The question asked before a switch, and its yes button."""
    return ("confirm_data", "confirm_data_yes") if role != "supply" else ("confirm_switch", "confirm_switch_yes")



def alert_key(kind: str, code: str | None, purpose: str | None, action: str | None) -> str | None:
    """The i18n key that words one of the meter's alerts for the household (None: no wording of its own)."""
    if kind in ("card_rejected", "remote_rejected"):
        return refusal_key(code)
    if kind == "security_error":
        return "refused_not_grid" if purpose == "breaker" else "alert_security_text"
    if kind == "breaker_remote":
        return "alert_grid_opened" if action == "open" else "alert_grid_closed"
    if kind == "breaker_fault":
        return "alert_breaker_fault_text"
    return None
