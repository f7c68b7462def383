"""The fleet inventory's tables: cells in regions, hosts, groups, labels, variables
and the change log (regions themselves are ``models.Region``).

Every node and environment is also a host (``kind`` ``node`` / ``environment``,
made by ``backed_hosts`` and removed with it by its foreign key's cascade); any
other machine is a host of kind ``machine``. A backed host's tenant, address and
minion id are always its node's or environment's, read through a join, never
copied: they can change after the host was made.

Variables are one JSON mapping per object (tenant, region, cell, group, host):
loading every level of 10,000 hosts is then 10,000 rows, not 200,000. A secret
variable's value is not here but in ``secrets`` (encrypted, rotated with the
others); ``secret_keys`` lists its name so the resolution knows where it is set.
"""

import datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, one_of, utcnow

# Where a variable may be set, farthest from a host first.
LEVELS = ("tenant", "region", "cell", "group", "host")
HOST_KINDS = ("node", "environment", "machine")
CHANGE_ACTIONS = ("create", "update", "delete")


class Cell(Base):
    """A part of a region (a rack, a room, an availability zone)."""

    __tablename__ = "cells"
    __repr_keys__ = ("id", "region_id", "name")
    __table_args__ = (UniqueConstraint("region_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    region_id: Mapped[int] = mapped_column(ForeignKey("regions.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))


class Host(Base):
    """A machine in the inventory: a compute node, an environment, or any other."""

    __tablename__ = "hosts"
    __repr_keys__ = ("id", "name", "kind")
    __table_args__ = (one_of("kind", HOST_KINDS), Index("ix_hosts_tenant_id_name", "tenant_id", "name"))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="machine")
    # A machine's tenant; a node's or environment's host takes its backing row's.
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("compute_nodes.id", ondelete="CASCADE"),
                                                unique=True)
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"),
                                                       unique=True)
    # How to reach a machine (a backed host is reached as its node or environment is).
    address: Mapped[str | None] = mapped_column(String(255))
    ssh_port: Mapped[int | None] = mapped_column(Integer)
    ssh_user: Mapped[str | None] = mapped_column(String(64))
    minion_id: Mapped[str | None] = mapped_column(String(255), unique=True)  # None: reached by salt-ssh
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id", ondelete="SET NULL"))
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"), index=True)
    cell_id: Mapped[int | None] = mapped_column(ForeignKey("cells.id"), index=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HostLabel(Base):
    __tablename__ = "host_labels"
    __repr_keys__ = ("host_id", "label")

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)


class HostGroup(Base):
    """A named set of hosts; a group may contain groups (never itself, even indirectly)."""

    __tablename__ = "host_groups"
    __repr_keys__ = ("id", "name")
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))


class GroupMember(Base):
    __tablename__ = "host_group_members"
    __repr_keys__ = ("group_id", "host_id")

    group_id: Mapped[int] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), primary_key=True,
                                         index=True)


class GroupChild(Base):
    __tablename__ = "host_group_children"
    __repr_keys__ = ("parent_id", "child_id")

    parent_id: Mapped[int] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("host_groups.id", ondelete="CASCADE"), primary_key=True,
                                          index=True)


class VariableSet(Base):
    """The variables of one object: ``data`` holds the plain ones, ``secret_keys`` the
    names of those kept encrypted in ``secrets`` (owner ``inventory:<level>:<id>``)."""

    __tablename__ = "inventory_variables"
    __repr_keys__ = ("id", "level", "object_id")
    __table_args__ = (UniqueConstraint("level", "object_id"), one_of("level", LEVELS))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    level: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(Integer)
    # JSONB on PostgreSQL: a search reads one key of every host's variables, which a
    # plain json column would parse again for each row.
    data: Mapped[dict] = mapped_column(JSON().with_variant(JSONB(), "postgresql"), default=dict)
    secret_keys: Mapped[list] = mapped_column(JSON, default=list)


class ChangeRecord(Base):
    """One change of an inventory object: who, when, what it was before and after
    (secret values masked). Kept after the object is gone."""

    __tablename__ = "inventory_changes"
    __repr_keys__ = ("id", "object_type", "object_id", "action")
    __table_args__ = (Index("ix_inventory_changes_object", "object_type", "object_id"),
                      one_of("action", CHANGE_ACTIONS))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user: Mapped[str | None] = mapped_column(String(255))
    tenant_id: Mapped[int | None] = mapped_column(Integer, index=True)  # kept after the tenant is gone
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(Integer)
    object_name: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
