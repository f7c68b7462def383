"""Compliance's tables: rules on a group or a host (a small vocabulary compiled to Salt
states, or a raw Salt state), each audited (``test=True``) or enforced; waivers of a
rule's drift on a host or a group, with a reason and an expiry; and runs, with one
result per host and rule.

A result keeps what Salt said of the rule's states on the host (what differed, or what
was changed) and the status it had when it was taken; whether a drift is waived *now*
is decided when it is read, so a drift shows again the moment its waiver expires.
"""

import datetime

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, one_of, utcnow

RULE_KINDS = ("file", "pkg_present", "pkg_absent", "service_running", "user_present", "sysctl", "sls")
MODES = ("audit", "enforce")
# A run applies each rule in its own mode, or every rule audited, or every rule enforced.
RUN_MODES = ("rules",) + MODES
RESULT_STATUSES = ("passed", "drifted", "fixed", "failed", "waived")


class ComplianceRule(Base):
    """A control: what a host of a group (and of the groups inside it), or one host, must be."""

    __tablename__ = "compliance_rules"
    __repr_keys__ = ("id", "name", "kind", "mode")
    __table_args__ = (UniqueConstraint("tenant_id", "name"), one_of("kind", RULE_KINDS), one_of("mode", MODES))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    # The kind's own settings (path, mode, user, group; name; value; sls).
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(16), default="audit")
    impact: Mapped[float] = mapped_column(Float, default=0.5)  # 0.0 (none) to 1.0 (critical), as InSpec's
    description: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ComplianceWaiver(Base):
    """A rule's drift accepted on a host or the hosts of a group, for a reason, until a time."""

    __tablename__ = "compliance_waivers"
    __repr_keys__ = ("id", "rule_id", "who", "until")

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("compliance_rules.id", ondelete="CASCADE"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"))
    group_id: Mapped[int | None] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    who: Mapped[str] = mapped_column(String(255))
    until: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), index=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ComplianceRun(Base):
    """One run of the rules (all of a tenant's, or one) on their hosts: a controller job."""

    __tablename__ = "compliance_runs"
    __repr_keys__ = ("id", "job_id", "mode")
    __table_args__ = (one_of("mode", RUN_MODES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[int | None] = mapped_column(Integer, index=True)
    rule_name: Mapped[str | None] = mapped_column(String(128))  # the one rule run, or None: all of them
    mode: Mapped[str] = mapped_column(String(16), default="rules")
    who: Mapped[str | None] = mapped_column(String(255))
    started: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    totals: Mapped[dict] = mapped_column(JSON, default=dict)  # {status: count}


class ComplianceResult(Base):
    """One rule on one host in one run. Names are copied: the record outlives the rule and host."""

    __tablename__ = "compliance_results"
    __repr_keys__ = ("id", "rule_name", "host_name", "status")
    __table_args__ = (one_of("status", RESULT_STATUSES), one_of("mode", MODES),
                      Index("ix_compliance_results_rule_id_host_id", "rule_id", "host_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("compliance_runs.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("compliance_rules.id", ondelete="SET NULL"))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"), index=True)
    waiver_id: Mapped[int | None] = mapped_column(ForeignKey("compliance_waivers.id", ondelete="SET NULL"))
    rule_name: Mapped[str] = mapped_column(String(128))
    host_name: Mapped[str] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(String(16))  # how the rule was applied on the host in this run
    status: Mapped[str] = mapped_column(String(16))
    # [{"state", "comment", "changes"}] of the states that differed, changed or failed.
    detail: Mapped[list] = mapped_column(JSON, default=list)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
