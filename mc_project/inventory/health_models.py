"""The fleet health's tables: checks defined on a group or a host, the state of each
check on each host and its history, notification handlers, silences, and every
notification sent, suppressed or failed.

A check's state on a host is one row (``check_states``): the hard state handlers
were told of and since when, the last result (the soft state) and how many results
in a row differed from the hard state. Its history keeps a row per change of either,
not one per result: a check that stays OK for a year is one row.
"""

import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, one_of, utcnow

CHECK_KINDS = ("http", "tcp", "script", "ttl")
STATES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
# A check's hard state before its first result.
PENDING = "PENDING"
HANDLER_KINDS = ("mail", "webhook")
NOTIFICATION_STATUSES = ("sent", "suppressed", "failed")


class Check(Base):
    """What to check, on the hosts of a group (and the groups inside it) or on one host."""

    __tablename__ = "health_checks"
    __repr_keys__ = ("id", "name", "kind")
    __table_args__ = (UniqueConstraint("tenant_id", "name"), one_of("kind", CHECK_KINDS))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    # The kind's own settings: url, status, body, tls_days; host, port; command.
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    interval: Mapped[int] = mapped_column(Integer, default=60)  # seconds; a TTL check's time to live
    timeout: Mapped[int] = mapped_column(Integer, default=10)
    retries: Mapped[int] = mapped_column(Integer, default=0)  # results that differ before the state does
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CheckState(Base):
    """One check on one host: its hard state and since when, its last result."""

    __tablename__ = "check_states"
    __repr_keys__ = ("id", "check_id", "host_id", "state")
    __table_args__ = (UniqueConstraint("check_id", "host_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("health_checks.id", ondelete="CASCADE"))
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=PENDING)  # the hard state
    since: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_state: Mapped[str | None] = mapped_column(String(16))  # the soft state: the last result's
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # results in a row that differ from ``state``
    output: Mapped[str | None] = mapped_column(Text)
    checked: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    # A TTL check's deadline: a pass pushes it on; past it, the check is CRITICAL.
    expires: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    # When handlers were last told, for the repeat of a state that stays bad.
    notified: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))


class CheckHistory(Base):
    """A change of a check's soft or hard state on a host."""

    __tablename__ = "check_history"
    __repr_keys__ = ("id", "state_id", "state", "hard")
    __table_args__ = (Index("ix_check_history_state_id_at", "state_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    state_id: Mapped[int] = mapped_column(ForeignKey("check_states.id", ondelete="CASCADE"))
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    state: Mapped[str] = mapped_column(String(16))
    hard: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    output: Mapped[str | None] = mapped_column(Text)


class Handler(Base):
    """Where a hard state change is told: a mail address or a webhook, for the checks of
    the hosts of one group (or of the whole tenant), again every ``repeat`` seconds while
    the state is not OK."""

    __tablename__ = "health_handlers"
    __repr_keys__ = ("id", "name", "kind")
    __table_args__ = (UniqueConstraint("tenant_id", "name"), one_of("kind", HANDLER_KINDS))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2048))  # mail address, or the webhook's URL
    group_id: Mapped[int | None] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), index=True)
    repeat: Mapped[int | None] = mapped_column(Integer)  # seconds; None: once per change
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Silence(Base):
    """A maintenance window on a host, a group or a check (any of them set narrows it):
    no handler is told of what it covers between ``starts`` and ``until``."""

    __tablename__ = "health_silences"
    __repr_keys__ = ("id", "who", "until")

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("health_checks.id", ondelete="CASCADE"))
    who: Mapped[str] = mapped_column(String(255))
    why: Mapped[str] = mapped_column(Text)
    starts: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    until: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Notification(Base):
    """One notification of a handler: sent, suppressed (by which silence) or failed (why).
    Names are copied: the record outlives the check, host and handler."""

    __tablename__ = "health_notifications"
    __repr_keys__ = ("id", "handler_name", "check_name", "host_name", "state", "status")
    __table_args__ = (one_of("status", NOTIFICATION_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("health_handlers.id", ondelete="SET NULL"))
    state_id: Mapped[int | None] = mapped_column(ForeignKey("check_states.id", ondelete="SET NULL"), index=True)
    silence_id: Mapped[int | None] = mapped_column(ForeignKey("health_silences.id", ondelete="SET NULL"))
    handler_name: Mapped[str] = mapped_column(String(128))
    check_name: Mapped[str] = mapped_column(String(128))
    host_name: Mapped[str] = mapped_column(String(255))
    previous: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
