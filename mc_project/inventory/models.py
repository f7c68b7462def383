"""The controller's inventory: what exists, where, and what is being done to it.

Every table here has a twin in ``migrations/versions/``; a unit test checks that
the migrations build exactly this schema. Constraint names follow
``NAMING_CONVENTION`` so later migrations can refer to them on every backend.
"""

import datetime
import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from mc_project.common.vocabulary import ENV_TYPES

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Every node and environment belongs to a tenant; rows made without one (by the
# runners, or before tenants were used) belong to this one.
DEFAULT_TENANT = "default"
# What a member of a tenant may do, lowest first: viewer reads; deployer pushes,
# rolls back, makes and destroys environments; admin also manages nodes and tenants.
ROLES = ("viewer", "deployer", "admin")
TOKEN_KINDS = ("session", "api")

JOB_STATUSES = ("pending", "running", "success", "failed", "interrupted", "undone")
# A step whose undo raised stays ``undo_failed``: something of it may be left.
STEP_STATUSES = JOB_STATUSES + ("undo_failed",)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def one_of(column, values):
    """A CHECK constraint keeping ``column`` within ``values``."""
    quoted = ", ".join("'{}'".format(value) for value in values)
    return CheckConstraint("{} IN ({})".format(column, quoted), name=column)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self):
        shown = ", ".join("{}={!r}".format(key, getattr(self, key, None)) for key in self.__repr_keys__)
        return "<{} {}>".format(type(self).__name__, shown)

    __repr_keys__ = ("id",)


class Tenant(Base):
    __tablename__ = "tenants"
    __repr_keys__ = ("id", "name")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


def default_tenant_id():
    """The default tenant's id, as a SQL expression (None until that tenant exists)."""
    return select(Tenant.id).where(Tenant.name == DEFAULT_TENANT).scalar_subquery()


class Region(Base):
    """A place hosts are in, of one tenant; its cells are ``fleet_models.Cell``."""

    __tablename__ = "regions"
    __repr_keys__ = ("id", "name")
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))


class ComputeNode(Base):
    """A host that runs containers (LXC today)."""

    __tablename__ = "compute_nodes"
    __repr_keys__ = ("id", "name", "address", "status")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    address: Mapped[str] = mapped_column(String(255))
    dns_name: Mapped[str | None] = mapped_column(String(255))
    ssh_port: Mapped[int] = mapped_column(Integer, default=22)
    slots: Mapped[int] = mapped_column(Integer, default=0)  # how many containers it may hold
    guest_type: Mapped[str] = mapped_column(String(32), default="lxc")
    subnet: Mapped[str | None] = mapped_column(String(64))  # containers' addresses, CIDR
    status: Mapped[str] = mapped_column(String(32), default="active")
    region_id: Mapped[int | None] = mapped_column(ForeignKey("regions.id"))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True,
                                                  default=default_tenant_id())
    # The node's Salt minion id; its name unless told otherwise.
    minion_id: Mapped[str] = mapped_column(
        String(255), unique=True, default=lambda context: context.get_current_parameters()["name"])
    # Server defaults as well: rows made before these columns existed get them.
    ssh_user: Mapped[str] = mapped_column(String(64), default="root", server_default="root")
    http_port: Mapped[int] = mapped_column(Integer, default=80, server_default="80")  # its reverse proxy
    # Node ports NATed to the containers' SSH.
    nat_port_min: Mapped[int] = mapped_column(Integer, default=40000, server_default="40000")
    nat_port_max: Mapped[int] = mapped_column(Integer, default=40999, server_default="40999")
    bridge: Mapped[str] = mapped_column(String(32), default="corpusbr0", server_default="corpusbr0")
    lxc_path: Mapped[str] = mapped_column(String(255), default="/var/lib/lxc",
                                          server_default="/var/lib/lxc")
    # Where corpus is installed on the node: <prefix>/venv, <prefix>/wheelhouse, <prefix>/etc.
    prefix: Mapped[str] = mapped_column(String(255), default="/srv/corpus",
                                        server_default="/srv/corpus")

    region: Mapped[Region | None] = relationship()
    environments: Mapped[list["Environment"]] = relationship(back_populates="node")


class Environment(Base):
    """A container that runs projects; its type sets the engine's mode."""

    __tablename__ = "environments"
    __repr_keys__ = ("id", "name", "env_type", "ip", "status")
    __table_args__ = (
        UniqueConstraint("node_id", "ip"),
        UniqueConstraint("node_id", "container"),
        one_of("env_type", ENV_TYPES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=lambda: str(uuid.uuid4()))
    name: Mapped[str] = mapped_column(String(255), unique=True)
    node_id: Mapped[int | None] = mapped_column(ForeignKey("compute_nodes.id"))
    env_type: Mapped[str] = mapped_column(String(16), default="dev")
    ip: Mapped[str | None] = mapped_column(String(64))
    ssh_nat_port: Mapped[int | None] = mapped_column(Integer)
    domains: Mapped[list] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(32), default="pending")
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), index=True,
                                                  default=default_tenant_id())
    project: Mapped[str | None] = mapped_column(String(255))
    container: Mapped[str | None] = mapped_column(String(255))  # the LXC container's name
    disk_size_mb: Mapped[int | None] = mapped_column(Integer)
    image: Mapped[str | None] = mapped_column(String(128))  # "name:version" it was cloned from (image_models)
    requester: Mapped[str | None] = mapped_column(String(255))  # e-mail address
    minion_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    node: Mapped[ComputeNode | None] = relationship(back_populates="environments")
    tenant: Mapped[Tenant | None] = relationship()
    projects: Mapped[list["Project"]] = relationship(back_populates="environment",
                                                     cascade="all, delete-orphan")


class Project(Base):
    __tablename__ = "projects"
    __repr_keys__ = ("id", "name", "environment_id")
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))

    environment: Mapped[Environment] = relationship(back_populates="projects")


class SshKey(Base):
    """A public key; its private half, when corpus made it, is a ``Secret``."""

    __tablename__ = "ssh_keys"
    __repr_keys__ = ("id", "name", "fingerprint")
    __table_args__ = (UniqueConstraint("environment_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str | None] = mapped_column(String(255))
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    node_id: Mapped[int | None] = mapped_column(ForeignKey("compute_nodes.id", ondelete="CASCADE"))


class Domain(Base):
    """A DNS zone of a tenant, served by PowerDNS: its name (unique: PowerDNS has one zone
    of a name) and its NS set. Its records are the ``DnsRecord`` rows of its zone."""

    __tablename__ = "domains"
    __repr_keys__ = ("id", "name")

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)  # without the trailing dot
    nameservers: Mapped[list] = mapped_column(JSON, default=list)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Set by every change of the domain or its records: updating it first is what makes two
    # writers of one zone wait for each other (a row lock on PostgreSQL, the write lock on SQLite).
    changed: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DnsRecord(Base):
    """One record (one content of an rrset). An environment's (``environment_id`` set) is
    made and removed with it; one with no environment was made through the domain's API."""

    __tablename__ = "dns_records"
    __repr_keys__ = ("id", "name", "type", "content")
    __table_args__ = (UniqueConstraint("name", "type", "content"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    zone: Mapped[str] = mapped_column(String(255), index=True)  # absolute: "example.org."
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    ttl: Mapped[int] = mapped_column(Integer, default=300)
    environment_id: Mapped[int | None] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))


class PortMapping(Base):
    """A node port forwarded (NAT) to a container port."""

    __tablename__ = "port_mappings"
    __repr_keys__ = ("id", "node_id", "external_port", "internal_port", "protocol")
    # One use of a node's port per protocol: tcp/2222 and udp/2222 are different ports.
    __table_args__ = (
        UniqueConstraint("node_id", "external_port", "protocol"),
        one_of("protocol", ("tcp", "udp")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("compute_nodes.id"))
    external_port: Mapped[int] = mapped_column(Integer)
    environment_id: Mapped[int] = mapped_column(ForeignKey("environments.id", ondelete="CASCADE"))
    internal_port: Mapped[int] = mapped_column(Integer)
    protocol: Mapped[str] = mapped_column(String(8), default="tcp")


class Secret(Base):
    """A credential. Its value is stored but never shown: ``repr`` masks it and
    the engines hide bound parameters from SQL logs and errors (see ``db``)."""

    __tablename__ = "secrets"
    __repr_keys__ = ("id", "owner", "name")
    __table_args__ = (UniqueConstraint("owner", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255))  # e.g. "env:<uuid>", "node:<name>"
    value: Mapped[str] = mapped_column(Text)

    def __repr__(self):
        return "<Secret id={!r}, owner={!r}, name={!r}, value='********'>".format(
            self.id, self.owner, self.name)

    __str__ = __repr__


class Pillar(Base):
    """What the corpus ext_pillar serves one minion."""

    __tablename__ = "pillars"
    __repr_keys__ = ("id", "minion_id")

    id: Mapped[int] = mapped_column(primary_key=True)
    minion_id: Mapped[str] = mapped_column(String(255), unique=True)
    data: Mapped[dict] = mapped_column(JSON, default=dict)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow,
                                                       onupdate=utcnow)


class Job(Base):
    """A controller operation: ordered steps sharing a JSON clipboard."""

    __tablename__ = "jobs"
    __repr_keys__ = ("id", "kind", "target", "status")
    __table_args__ = (one_of("status", JOB_STATUSES),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    clipboard: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)  # one sentence: which step failed and why
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    ended: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    # Who runs it: the process id, its host and its start time (a reused pid has another).
    owner_pid: Mapped[int | None] = mapped_column(Integer)
    owner_host: Mapped[str | None] = mapped_column(String(255))
    owner_started: Mapped[float | None] = mapped_column(Float)
    # The tenant of the API caller who started it (None: a runner's; its target's tenant).
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"))

    steps: Mapped[list["JobStep"]] = relationship(back_populates="job", order_by="JobStep.index",
                                                  cascade="all, delete-orphan")


class JobStep(Base):
    __tablename__ = "job_steps"
    __repr_keys__ = ("job_id", "index", "name", "status")
    __table_args__ = (
        UniqueConstraint("job_id", "index"),
        one_of("status", STEP_STATUSES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 1-based, as shown to users
    name: Mapped[str] = mapped_column(String(128))  # "provider:action"
    status: Mapped[str] = mapped_column(String(16), default="pending")
    started: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    ended: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    log: Mapped[str] = mapped_column(Text, default="")
    undo_data: Mapped[dict] = mapped_column(JSON, default=dict)

    job: Mapped[Job] = relationship(back_populates="steps")


class User(Base):
    """Someone who logs in to the API: a local user (argon2 ``password_hash``) or one
    the LDAP directory vouched for (no hash; memberships refreshed at each login)."""

    __tablename__ = "users"
    __repr_keys__ = ("id", "name", "source")
    __table_args__ = (one_of("source", ("local", "ldap")),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    source: Mapped[str] = mapped_column(String(16), default="local")
    password_hash: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(back_populates="user",
                                                           cascade="all, delete-orphan")

    def __repr__(self):
        return "<User id={!r}, name={!r}, source={!r}>".format(self.id, self.name, self.source)


class Membership(Base):
    """A user's role in a tenant."""

    __tablename__ = "memberships"
    __repr_keys__ = ("user_id", "tenant_id", "role")
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"), one_of("role", ROLES))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16), default="viewer")

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship()


class ApiToken(Base):
    """A bearer token: only its SHA-256 is kept; it expires and can be revoked."""

    __tablename__ = "api_tokens"
    __repr_keys__ = ("id", "user_id", "kind", "name")
    __table_args__ = (one_of("kind", TOKEN_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default="session")
    name: Mapped[str | None] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship()


class AuditEntry(Base):
    """One call that changed something (or tried to): who, what, when, result."""

    __tablename__ = "audit_entries"
    __repr_keys__ = ("id", "user", "action", "status")

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(255))  # "POST /v1/environments"
    target: Mapped[str | None] = mapped_column(String(255))
    tenant: Mapped[str | None] = mapped_column(String(128))  # the tenant of the target, when known
    status: Mapped[int] = mapped_column(Integer)  # the HTTP status answered
    result: Mapped[str] = mapped_column(Text, default="")  # one sentence, or the job made
