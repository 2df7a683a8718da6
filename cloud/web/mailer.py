"""The public site's own e-mail: the confirmation of a registration's address (double opt-in), with the
link that confirms it and the link that manages the registration. Sent at once over SMTP (the outage
e-mails go through the notifier's outbox; this one answers a person who is waiting for it)."""
from __future__ import annotations

import smtplib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, make_msgid
from urllib.parse import urlencode

from ..outage.mail import Sender
from ..outage.model import Language
from ..outage.notifier import SMTP_POLICY
from ..outage.texts import when
from ..secrets import LinkSigner

CONFIRM_LIFETIME = timedelta(days=2)
MANAGE_LIFETIME = timedelta(days=60)
MYPAGE_LIFETIME = timedelta(hours=1)  # a sign-in to the customer's page, where contracts can be changed


def link_subject(meter_id: str, email: str) -> str:
    """What a link is bound to: one meter and one address. A confirmation link is void once a newer address
    waits or the address is confirmed; a management link, once the confirmed address changes or is deleted."""
    return f"{meter_id}|{email.lower()}"


@dataclass(frozen=True)
class Mailer:
    sender: Sender  # From address and the handlers' key (signs the links)
    site_url: str  # where the links point: the public site, e.g. https://teiden.example.jp
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    timeout_s: float = 30.0

    @property
    def confirm_links(self) -> LinkSigner:
        return LinkSigner(self.sender.key, "confirm", CONFIRM_LIFETIME)

    @property
    def manage_links(self) -> LinkSigner:
        return LinkSigner(self.sender.key, "manage", MANAGE_LIFETIME)

    @property
    def mypage_links(self) -> LinkSigner:
        return LinkSigner(self.sender.key, "mypage", MYPAGE_LIFETIME)

    def link(self, path: str, signer: LinkSigner, meter_id: str, email: str, language: Language,
             now: datetime) -> tuple[str, datetime]:
        """The link and when it expires; it opens the page in the registration's language."""
        expires, token = signer.sign(link_subject(meter_id, email), now)
        query = urlencode({"m": meter_id, "x": expires, "t": token, "lang": language.value})
        return f"{self.site_url.rstrip('/')}{path}?{query}", now + signer.lifetime

    def confirmation(self, meter_id: str, email: str, name: str, language: Language, now: datetime) -> MIMEText:
        confirm, confirm_until = self.link("/register/confirm", self.confirm_links, meter_id, email, language, now)
        manage, _ = self.link("/register/manage", self.manage_links, meter_id, email, language, now)
        ja = language is Language.JA
        if ja:
            subject = "メールアドレスの確認（停電情報サービス）"
            lines = [f"{name} 様", "", "停電情報サービスへのご登録ありがとうございます。",
                     "次のリンクを開いて、このメールアドレスを確認してください。確認が済むまで、停電のお知らせはこのアドレスに届きません。",
                     "", confirm, f"（{when(confirm_until, language)} まで有効）", "",
                     "ご登録内容の確認・変更・削除、配信停止は次のリンクからできます（確認後に有効）。", "", manage, "",
                     "このメールに心当たりがない場合は、何もしないでください。登録は完了しません。"]
        else:
            subject = "Confirm your e-mail address (power outage information)"
            lines = [f"Dear {name or 'customer'},", "", "Thank you for registering for power outage information.",
                     "Open this link to confirm this address. Until you do, no outage notice is sent to it.", "",
                     confirm, f"(valid until {when(confirm_until, language)})", "",
                     "To view, change or delete your registration, or to unsubscribe, use this link (once confirmed):",
                     "", manage, "", "If you did not register, do nothing: the registration will not be completed."]
        return self._message(email, subject, lines, language, now)

    def mypage(self, meter_id: str, email: str, name: str, language: Language, now: datetime) -> MIMEText:
        """The sign-in link to the customer's page (contracts and remote switching), asked for on the site."""
        link, until = self.link("/mypage", self.mypage_links, meter_id, email, language, now)
        if language is Language.JA:
            subject = "お客さまページへのサインイン（停電情報サービス）"
            lines = [f"{name} 様", "", "お客さまページを開くリンクです。メーターの契約の確認と、電力会社の切り替えができます。",
                     "", link, f"（{when(until, language)} まで有効）", "",
                     "このメールに心当たりがない場合は、何もしないでください。"]
        else:
            subject = "Sign in to your customer page (power outage information)"
            lines = [f"Dear {name or 'customer'},", "",
                     "This link opens your customer page: your meter's contracts, and switching your power company.",
                     "", link, f"(valid until {when(until, language)})", "",
                     "If you did not ask for this, do nothing."]
        return self._message(email, subject, lines, language, now)

    def _message(self, to: str, subject: str, lines: list[str], language: Language, now: datetime) -> MIMEText:
        msg = MIMEText("\n".join(lines) + "\n", "plain", "utf-8")
        msg["Subject"] = Header(subject, "utf-8")
        msg["From"] = formataddr((str(Header(self.sender.display_name, "utf-8")), self.sender.address))
        msg["To"] = to
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid(domain=self.sender.address.split("@")[-1])
        msg["Content-Language"] = language.value
        msg["Auto-Submitted"] = "auto-generated"
        return msg

    def send(self, msg: MIMEText) -> None:
        """Hand the message to the SMTP server (raises ``smtplib.SMTPException`` or ``OSError``)."""
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_s) as smtp:
            smtp.sendmail(self.sender.address, [msg["To"]], msg.as_bytes(policy=SMTP_POLICY))
