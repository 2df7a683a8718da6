"""The notifier (public server 27): drains the notification outbox into real SMTP.

Exactly one e-mail per customer per event:
* the manager writes each e-mail as a row with a unique key (outage, meter, event[, revision]);
* a notifier *claims* due rows atomically (SQLite: BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE SKIP
  LOCKED) with a lease, sends, then marks them sent. Several notifiers never hold the same row.
* a notifier that dies mid-batch leaves rows ``sending``; they are taken again when the lease ends.
  The only possible repeat is a crash between the SMTP server's "250" and the commit; the e-mail
  then carries the same Message-ID, so it is recognisable.

SMTP failures go to a retry queue with exponential back-off; quiet hours hold back everything but
urgent e-mails (an outage being declared, a security error).
"""
from __future__ import annotations

import email.policy
import logging
import os
import smtplib
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from appliance.clock import JST, Clock

from .mail import Sender, compose
from .model import Event, Notification, NotificationState, Outage, OutageMember
from .storage import Storage

log = logging.getLogger(__name__)

SMTP_POLICY = email.policy.compat32.clone(linesep="\r\n")  # SMTP wants CRLF; smtplib sends bytes as they are


@dataclass
class NotifierConfig:
    sender: Sender  # the From address and the key that signs unsubscribe links
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    quiet_start: time | None = time(22, 0)  # JST; None: no quiet hours
    quiet_end: time | None = time(7, 0)
    batch: int = 100
    lease: timedelta = timedelta(minutes=2)
    max_attempts: int = 8
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=1)
    smtp_timeout_s: float = 30.0


@dataclass
class NotifierStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0


class Notifier:
    def __init__(self, storage: Storage, clock: Clock, config: NotifierConfig, worker: str | None = None) -> None:
        self.storage = storage
        self.clock = clock
        self.config = config
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.stats = NotifierStats()

    def in_quiet_hours(self, now: datetime) -> bool:
        start, end = self.config.quiet_start, self.config.quiet_end
        if start is None or end is None:
            return False
        t = now.astimezone(JST).time()
        return start <= t or t < end if start > end else start <= t < end

    def run_once(self) -> int:
        """Claim one batch of due e-mails and send them. Returns how many were sent."""
        now = self.clock.now()
        claimed = self.storage.claim_notifications(
            self.worker, now, self.config.lease.total_seconds(), self.config.batch, urgent_only=self.in_quiet_hours(now)
        )
        if not claimed:
            return 0
        sent = 0
        smtp: smtplib.SMTP | None = None
        context = _BatchContext(self.storage, claimed)  # one query per kind of row, not per e-mail
        try:
            for n in claimed:
                msg = self._compose(n, now, context)
                if msg is None:
                    self._finish(n, NotificationState.SKIPPED)
                    self.stats.skipped += 1
                    continue
                try:
                    if smtp is None:
                        smtp = smtplib.SMTP(self.config.smtp_host, self.config.smtp_port, timeout=self.config.smtp_timeout_s)
                    smtp.sendmail(self.config.sender.address, [msg["To"]], msg.as_bytes(policy=SMTP_POLICY))
                except (smtplib.SMTPException, OSError) as exc:
                    self._failed(n, exc)
                    if not isinstance(exc, (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused)):
                        smtp = self._close(smtp)  # the connection itself is suspect
                    continue
                self._finish(n, NotificationState.SENT)
                self.stats.sent += 1
                sent += 1
        finally:
            self._close(smtp)
        return sent

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                if self.run_once():
                    continue  # more may be waiting
            except Exception:
                log.exception("notifier pass failed")
            stop.wait(poll_s)

    # -----
    def _compose(self, n: Notification, now: datetime, context: "_BatchContext"):
        reg = context.registrations.get(n.meter_id)
        if reg is None or not reg.reachable:
            return None  # unsubscribed (or address removed) since the e-mail was queued
        outage = member = None
        if n.outage_id is not None:
            outage = context.outage(n.outage_id)
            member = context.member(n.outage_id, n.meter_id)
            if outage is None or (member is None and n.event is not Event.PLANNED_NOTICE):
                log.error("notification %s refers to a missing outage or member", n.key)
                return None
        return compose(n.event, reg, self.config.sender, n.key, outage, member, n.detail, now=now)

    def _finish(self, n: Notification, state: NotificationState, error: str | None = None, retry_at: datetime | None = None) -> None:
        if not self.storage.finish_notification(n.id, self.worker, state, self.clock.now(), error, retry_at):
            log.warning("lost the claim on %s (lease ended); another notifier owns it now", n.key)

    def _failed(self, n: Notification, exc: Exception) -> None:
        permanent = isinstance(exc, smtplib.SMTPRecipientsRefused) or (
            isinstance(exc, smtplib.SMTPResponseException) and 500 <= exc.smtp_code < 600
        )
        if permanent or n.attempts >= self.config.max_attempts:
            log.error("giving up on %s after %d attempts: %s", n.key, n.attempts, exc)
            self._finish(n, NotificationState.FAILED, str(exc)[:500])
            self.stats.failed += 1
            return
        delay = min(self.config.retry_base * (2 ** (n.attempts - 1)), self.config.retry_max)
        log.warning("SMTP failed for %s (attempt %d), retry in %s: %s", n.key, n.attempts, delay, exc)
        self._finish(n, NotificationState.RETRY, str(exc)[:500], self.clock.now() + delay)
        self.stats.retried += 1

    @staticmethod
    def _close(smtp: smtplib.SMTP | None) -> None:
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
        return None


class _BatchContext:
    """What one batch of e-mails needs from the database, read once (the state at claim time)."""

    def __init__(self, storage: Storage, claimed: list[Notification]) -> None:
        self.storage = storage
        self.registrations = storage.registrations(sorted({n.meter_id for n in claimed}))
        self._outages: dict[int, Outage | None] = {}
        self._members: dict[int, dict[str, OutageMember]] = {}
        self._meters_of: dict[int, list[str]] = {}
        for n in claimed:
            if n.outage_id is not None:
                self._meters_of.setdefault(n.outage_id, []).append(n.meter_id)

    def outage(self, outage_id: int) -> Outage | None:
        if outage_id not in self._outages:
            self._outages[outage_id] = self.storage.outage(outage_id)
        return self._outages[outage_id]

    def member(self, outage_id: int, meter_id: str) -> OutageMember | None:
        if outage_id not in self._members:
            self._members[outage_id] = self.storage.members_of(outage_id, self._meters_of.get(outage_id, []))
        return self._members[outage_id].get(meter_id)
