"""The e-mails of the public server 27: Fig. 11(a) (area), Fig. 11(b) (indoor), Fig. 12 (occurrence
and restoration), plus the expected-restoration update, the planned-outage notice and the meter's
security error. Japanese by default, English per customer; every time in JST."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr
from typing import Any
from urllib.parse import quote

from ..secrets import LinkSigner
from .model import Event, Language, Outage, OutageKind, OutageMember, Registration
from .texts import REASON, RESPONSE_STATUS, label, when

COUNT_NOTE = {
    Language.JA: "※ 停電戸数は、発生時点の（最大かつ一時的な）戸数であり、短時間で復旧した戸数も含まれております。",
    Language.EN: "* The number of homes is the (maximum, momentary) number at the time of the outage, and includes homes "
    "whose power came back quickly.",
}


@dataclass(frozen=True)
class Sender:
    key: bytes  # signs unsubscribe links: the handlers' key (cloud.secrets.load_or_create_key); no default
    address: str = "teiden@example.jp"
    display_name: str = "停電情報サービス"
    public_url: str = "http://127.0.0.1:8080"  # where the unsubscribe link points (the API)
    link_lifetime: timedelta = timedelta(days=60)  # an e-mail's link works this long

    def __post_init__(self) -> None:
        if len(self.key) < 32:
            raise ValueError("a Sender needs the handlers' signing key (at least 32 bytes)")

    @property
    def unsubscribe_links(self) -> LinkSigner:
        return LinkSigner(self.key, "unsubscribe", self.link_lifetime)

    def unsubscribe_url(self, meter_id: str, now: datetime) -> str:
        expires, token = self.unsubscribe_links.sign(meter_id, now)
        return f"{self.public_url}/unsubscribe?meter_id={quote(meter_id)}&expires={expires}&token={token}"


def _area_line(o: Outage, lang: Language) -> str:
    a = o.area
    return a.label(" ") if lang is Language.JA else f"{a.district}, {a.city}, {a.prefecture}"


def _homes(n: int, lang: Language) -> str:
    return f"{n}戸" if lang is Language.JA else f"{n} home{'s' if n != 1 else ''}"


def _fields(rows: list[tuple[str, str]], lang: Language) -> list[str]:
    sep = "：" if lang is Language.JA else ": "
    return [f"{k}{sep}{v}" for k, v in rows]


def _fig11a(o: Outage, lang: Language) -> list[str]:
    if lang is Language.JA:
        return _fields([
            ("停電日時", when(o.started_at, lang)),
            ("復旧予定日時", when(o.expected_restoration, lang)),
            ("停電地域・停電戸数", f"{_area_line(o, lang)}・{_homes(o.peak_count, lang)}"),
            ("対応状況", label(RESPONSE_STATUS, o.response_status, lang)),
            ("停電理由", label(REASON, o.reason, lang)),
        ], lang)
    return _fields([
        ("Outage since", when(o.started_at, lang)),
        ("Expected restoration", when(o.expected_restoration, lang)),
        ("Outage area / homes", f"{_area_line(o, lang)} / {_homes(o.peak_count, lang)}"),
        ("Response status", label(RESPONSE_STATUS, o.response_status, lang)),
        ("Reason", label(REASON, o.reason, lang)),
    ], lang)


def _fig11b(o: Outage, member: OutageMember, lang: Language) -> list[str]:
    if lang is Language.JA:
        return _fields([
            ("停電日時", when(member.down_at, lang)),
            ("対応状況", label(RESPONSE_STATUS, "indoor", lang)),
            ("停電理由", label(REASON, "home_breaker", lang)),
        ], lang)
    return _fields([
        ("Outage since", when(member.down_at, lang)),
        ("Response status", label(RESPONSE_STATUS, "indoor", lang)),
        ("Reason", label(REASON, "home_breaker", lang)),
    ], lang)


def _fig12(o: Outage, member: OutageMember, lang: Language) -> list[str]:
    restored = member.restored_at or o.restored_at
    a = o.area
    if lang is Language.JA:
        return [
            "発生日時　　　　　　　　復旧日時",
            f"{when(o.started_at, lang)}　{when(restored, lang)}",
            *_fields([
                ("停電地域", f"{a.prefecture} {a.city} {a.district}"),
                ("停電理由", label(REASON, o.reason, lang)),
                ("停電戸数", _homes(o.peak_count, lang)),
            ], lang),
            COUNT_NOTE[lang],
        ]
    return [
        "Started                 Restored",
        f"{when(o.started_at, lang)}    {when(restored, lang)}",
        *_fields([
            ("Outage area", _area_line(o, lang)),
            ("Reason", label(REASON, o.reason, lang)),
            ("Homes", _homes(o.peak_count, lang)),
        ], lang),
        COUNT_NOTE[lang],
    ]


def _planned(o: Outage, lang: Language) -> list[str]:
    span = f"{when(o.started_at, lang)} 〜 {when(o.planned_end, lang)}" if lang is Language.JA else \
        f"{when(o.started_at, lang)} to {when(o.planned_end, lang)}"
    if lang is Language.JA:
        return _fields([("停電予定日時", span), ("停電地域", _area_line(o, lang)), ("停電理由", label(REASON, o.reason, lang))], lang)
    return _fields([("Planned outage", span), ("Area", _area_line(o, lang)), ("Reason", label(REASON, o.reason, lang))], lang)


HEADINGS: dict[tuple[Event, bool], tuple[str, str]] = {
    # (event, indoor) -> (ja, en)
    (Event.DECLARED, False): ("お客様のお住まい地域が停電しています。", "There is a power outage in your area."),
    (Event.DECLARED, True): ("お客様の屋内が停電しています。", "The power is off inside your home."),
    (Event.RESTORATION_CHANGED, False): ("お客様のお住まい地域の停電について、復旧予定日時が変わりました。",
                                         "The expected restoration of the power outage in your area has changed."),
    (Event.RESTORED, False): ("お客様のお住まい地域の停電は復旧しました。", "The power in your area has been restored."),
    (Event.RESTORED, True): ("お客様の屋内の停電は復旧しました。", "The power in your home has been restored."),
    (Event.PLANNED_NOTICE, False): ("工事のため、お客様のお住まい地域で停電を予定しています。",
                                    "Planned work will interrupt the power in your area."),
    (Event.SECURITY_ERROR, False): ("お客様のスマートメーターでセキュリティエラーが発生しました。",
                                    "Your smart meter reported a security error."),
}
SUBJECTS = {
    Event.PLANNED_NOTICE: ("工事停電のお知らせ", "Notice of planned power outage"),
    Event.SECURITY_ERROR: ("スマートメーターのお知らせ", "Smart meter notice"),
}
DEFAULT_SUBJECT = ("停電情報のお知らせ", "Notice of power outage information")


def compose(event: Event, reg: Registration, sender: Sender, key: str, outage: Outage | None = None,
            member: OutageMember | None = None, detail: dict[str, Any] | None = None, *, now: datetime) -> MIMEText:
    lang = reg.language
    ja = lang is Language.JA
    indoor = outage is not None and outage.kind is OutageKind.INDOOR
    heading = HEADINGS.get((event, indoor)) or HEADINGS[(event, False)]
    title = SUBJECTS.get(event, DEFAULT_SUBJECT)[0 if ja else 1]
    if event is Event.SECURITY_ERROR:
        d = detail or {}
        body = _fields([("発生日時" if ja else "At", d.get("at_text", "")), ("内容" if ja else "Detail", d.get("detail", ""))], lang)
    elif event is Event.PLANNED_NOTICE:
        body = _planned(outage, lang)
    elif event is Event.RESTORED:
        body = _fig12(outage, member, lang)
    elif indoor:
        body = _fig11b(outage, member, lang)
    else:
        body = _fig11a(outage, lang)
    greeting = f"{reg.name} 様" if ja else f"Dear {reg.name or 'customer'},"
    customer = ("お客様番号" if ja else "Customer number") + ("：" if ja else ": ") + reg.customer_number
    unsubscribe = sender.unsubscribe_url(reg.meter_id, now)
    footer = ("配信停止はこちら：" if ja else "Unsubscribe: ") + unsubscribe
    text = "\n".join([greeting, "", title, "", heading[0 if ja else 1], "", *body, "", customer, "", footer, ""])

    # compat32 MIME with pre-encoded headers: the modern email policy's header folding costs
    # milliseconds per message, which limits a notifier's rate far more than SMTP does
    msg = MIMEText(text, "plain", "utf-8")
    msg["Subject"] = Header(title, "utf-8")
    msg["From"] = formataddr((str(Header(sender.display_name, "utf-8")), sender.address))
    msg["To"] = reg.email
    msg["Date"] = format_datetime(now)
    # the same event always has the same Message-ID: a resend after a crash is recognisable as one
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    msg["Message-ID"] = f"<outage.{digest}@{sender.address.split('@')[-1]}>"
    msg["List-Unsubscribe"] = f"<{unsubscribe}>"
    msg["X-Outage-Event"] = f"{event.value} {key}"
    msg["Content-Language"] = lang.value
    return msg
