"""The storage interface: one class over one database, its methods grouped by what they keep.

registrations (Table 1), readings and the meters' last word (the collector), outages and their
members (Tables 3-5, the manager), distribution automation events, and the notifications outbox
(the notifiers), and the messages the collector refused (dead letters). Opening a database brings its schema to this code's version (:mod:`.migrations`).
"""
from __future__ import annotations

from .audit import AuditLog
from .contracts import ContractStates
from .da_events import DaEvents
from .database import Backend
from .dead_letters import DeadLetters
from .migrations import migrate
from .notifications import Notifications
from .outages import Outages
from .partitions import Retention
from .readings import Readings
from .registrations import Registrations
from .search import Search


class Storage(Registrations, Readings, Outages, DaEvents, Notifications, DeadLetters, AuditLog, Search,
              ContractStates):
    """Everything the pipeline keeps: registrations, the MDMS, the meters' evidence, outages, e-mails.

    Thread-safe: one connection per instance behind a lock. Processes share the database itself.
    """

    def __init__(self, backend: Backend, retention: Retention | None = None) -> None:
        super().__init__(backend)
        if retention is not None:
            self.retention = retention
        try:
            migrate(self)
        except BaseException:
            self.close()
            raise
