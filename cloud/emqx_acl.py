"""interfaces.md section 2 as an EMQX 5 ``acl.conf`` (the authorization ``file`` source), and a reader
and judge of such a file.

The rules are the ones ``smartmeter broker`` gives Mosquitto (:func:`cloud.broker.acl_rules`), turned
into EMQX's Erlang terms: Mosquitto's ``read`` is EMQX's ``subscribe``, ``write`` is ``publish``.
One ``allow`` line per party and action, then ``{deny, all}.``: what is not listed is refused, as
with Mosquitto's ACL file.

:func:`authorize` judges a request the way EMQX documents its file source (docs.emqx.com, "Use ACL
File"): the rules are tried from the top, the first one that matches the client, the action and the
topic decides. A subscription's filter is matched level by level against the rule's filter, its own
``+`` and ``#`` taken as plain words, so ``meters/+/interval`` needs a rule that covers every meter.
The ``$share/GROUP/`` prefix is not part of what is judged. The tests hold it against the real
Mosquitto's answers for the same accounts, so the two brokers refuse the same things.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .broker import Party, acl_rules

# Mosquitto's ACL access word -> EMQX's action
ACTION_OF = {"read": "subscribe", "write": "publish", "readwrite": "all"}


@dataclass(frozen=True)
class Rule:
    permission: str  # allow | deny
    who: tuple[str, str] | None  # (user | clientid, name); None: every client
    action: str  # publish | subscribe | all
    topics: tuple[str, ...]  # filters; "${username}" and "${clientid}" stand for the client's own


def party_rules(party: Party) -> list[Rule]:
    """One party's Mosquitto rules as EMQX rules, one per action, in the Mosquitto order."""
    by_action: dict[str, list[str]] = {}
    for line in acl_rules(party):
        word, access, topic = line.split(" ", 2)
        if word != "topic" or access not in ACTION_OF:
            raise ValueError(f"not a Mosquitto topic rule: {line!r}")
        by_action.setdefault(ACTION_OF[access], []).append(topic)
    return [Rule("allow", ("user", party.name), action, tuple(topics)) for action, topics in by_action.items()]


def acl_conf(parties: Iterable[Party]) -> str:
    out = ["%% Written by `smartmeter broker export-emqx`: interfaces.md section 2, as the Mosquitto ACL.",
           "%% The first matching rule decides; anything not listed is refused (the last line, and",
           "%% authorization.no_match = deny in emqx.conf)."]
    for p in parties:
        out.append(f"\n%% {p.kind} {p.name}")
        out += [render(rule) for rule in party_rules(p)]
    out.append("\n" + render(Rule("deny", None, "all", ())))
    return "\n".join(out) + "\n"


def render(rule: Rule) -> str:
    if rule.who is None and not rule.topics:
        return f"{{{rule.permission}, all}}."
    who = "all" if rule.who is None else f"{{{rule.who[0]}, {_string(rule.who[1])}}}"
    topics = ", ".join(_string(t) for t in rule.topics)
    return f"{{{rule.permission}, {who}, {rule.action}, [{topics}]}}."


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- reading an acl.conf ---------------------------------------------------------------------------

class Atom(str):
    """An Erlang atom (``allow``, ``user`` ...), told apart from a string."""


_TOKEN = re.compile(r'\s+|%[^\n]*|(?P<punct>[{}\[\],.])|"(?P<str>(?:[^"\\]|\\.)*)"|(?P<atom>[a-z][A-Za-z0-9_]*)')


def parse(text: str) -> list[Rule]:
    """The rules of an ``acl.conf``; ValueError naming the place of anything that is not a rule."""
    tokens = _tokens(text)
    rules, i = [], 0
    while i < len(tokens):
        term, i = _term(tokens, i)
        if i >= len(tokens) or tokens[i] != ("punct", "."):
            raise ValueError(f"rule {len(rules) + 1}: no '.' after it")
        rules.append(_rule(term))
        i += 1
    return rules


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"character {pos}: cannot read {text[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup == "str":
            out.append(("str", re.sub(r"\\(.)", r"\1", m.group("str"))))
        elif m.lastgroup in ("punct", "atom"):
            out.append((m.lastgroup, m.group(m.lastgroup)))
    return out


def _term(tokens: list[tuple[str, str]], i: int):
    kind, value = tokens[i]
    if kind == "str":
        return value, i + 1
    if kind == "atom":
        return Atom(value), i + 1
    if value not in "{[":
        raise ValueError(f"token {i}: unexpected {value!r}")
    close, items, i = "}" if value == "{" else "]", [], i + 1
    while tokens[i] != ("punct", close):
        item, i = _term(tokens, i)
        items.append(item)
        if tokens[i] == ("punct", ","):
            i += 1
        elif tokens[i] != ("punct", close):
            raise ValueError(f"token {i}: expected ',' or {close!r}")
    return (tuple(items) if close == "}" else list(items)), i + 1


def _rule(term) -> Rule:
    if not isinstance(term, tuple) or not term or term[0] not in ("allow", "deny"):
        raise ValueError(f"not a rule: {term!r}")
    if len(term) == 2 and isinstance(term[1], Atom) and term[1] == "all":
        return Rule(term[0], None, "all", ())
    if len(term) != 4:
        raise ValueError(f"a rule has 4 parts (permission, who, action, topics): {term!r}")
    permission, who, action, topics = term
    if who == "all":
        who_pair = None
    elif isinstance(who, tuple) and len(who) == 2 and who[0] in ("user", "username", "client", "clientid") \
            and isinstance(who[1], str) and not isinstance(who[1], Atom):
        who_pair = ("user" if who[0] in ("user", "username") else "clientid", who[1])
    else:
        raise ValueError(f"who: {who!r} is not all, {{user, \"NAME\"}} or {{clientid, \"ID\"}}")
    if action not in ("publish", "subscribe", "all"):
        raise ValueError(f"action: {action!r} is not publish, subscribe or all")
    if not isinstance(topics, list) or not all(isinstance(t, str) and not isinstance(t, Atom) for t in topics):
        raise ValueError(f"topics: {topics!r} is not a list of strings")
    return Rule(permission, who_pair, action, tuple(topics))


# -- judging a request -----------------------------------------------------------------------------

def authorize(rules: list[Rule], username: str, clientid: str, action: str, topic: str, *,
              no_match: str = "deny") -> bool:
    """Whether EMQX lets ``username`` publish to, or subscribe to, ``topic`` under ``rules``."""
    topic = strip_share(topic) if action == "subscribe" else topic
    for rule in rules:
        if rule.who is not None and rule.who[1] != (username if rule.who[0] == "user" else clientid):
            continue
        if rule.action not in ("all", action):
            continue
        if rule.who is None and not rule.topics:  # {allow|deny, all}
            return rule.permission == "allow"
        filters = (f.replace("${username}", username).replace("${clientid}", clientid) for f in rule.topics)
        if any(matches(topic, f) for f in filters):
            return rule.permission == "allow"
    return no_match == "allow"


def strip_share(topic: str) -> str:
    """``$share/GROUP/meters/+/interval`` -> ``meters/+/interval``."""
    if topic.startswith("$share/"):
        return topic.split("/", 2)[2]
    return topic


def matches(name: str, rule_filter: str) -> bool:
    """EMQX's ``emqx_topic:match/2``: ``name`` (a topic, or a subscription's filter with its
    wildcards as plain words) against a rule's filter; ``+`` and ``#`` skip no ``$`` root."""
    words, pattern = name.split("/"), rule_filter.split("/")
    if name.startswith("$") and pattern[0] in ("+", "#"):
        return False
    for i, p in enumerate(pattern):
        if p == "#":
            return True
        if i >= len(words) or (p != "+" and p != words[i]):
            return False
    return len(words) == len(pattern)
