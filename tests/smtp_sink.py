"""A real SMTP server (aiosmtpd) on a free port that keeps every message it accepts, parsed."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

from devkit.ports import free_port


class Mailbox:
    """Every message the real SMTP server accepted, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.fail_next = 0  # answer 451 to this many messages (a failing relay)
        self._lock = threading.Lock()
        self.host, self.port = "127.0.0.1", 0

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.fail_next:
                self.fail_next -= 1
                return "451 4.3.0 try again later"
            msg = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append(msg)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    @property
    def recipients(self) -> list[str]:
        return sorted(m["To"] for m in self.messages)


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.host, box.port = controller.hostname, controller.port
    try:
        yield box
    finally:
        controller.stop()
