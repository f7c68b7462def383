"""The key/value store's tables (``mc_project.health.kv`` reads and writes them).

Each tenant has a store of its own: its keys, the tombstones of its deleted keys,
and its counter. Every change takes the next number of the tenant's counter; a
key's ``create_index`` is the number it was made with, its ``modify_index`` the
number of its last change. A deleted key leaves a tombstone with the number of its
deletion, so a watcher of that key (or of a prefix holding it) sees the index pass
the one it knew. Values are bytes.
"""

from sqlalchemy import BigInteger, ForeignKey, Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base

MAX_KEY_LENGTH = 512


class KvStore(Base):
    """A tenant's counter: the number of its store's last change."""

    __tablename__ = "kv_stores"
    __repr_keys__ = ("tenant_id", "last_index")

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    last_index: Mapped[int] = mapped_column(BigInteger, default=0)


class KvEntry(Base):
    """One key of a tenant's store."""

    __tablename__ = "kv_entries"
    __repr_keys__ = ("id", "tenant_id", "key", "modify_index")
    __table_args__ = (UniqueConstraint("tenant_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    value: Mapped[bytes] = mapped_column(LargeBinary)
    flags: Mapped[int] = mapped_column(BigInteger, default=0)
    create_index: Mapped[int] = mapped_column(BigInteger)
    modify_index: Mapped[int] = mapped_column(BigInteger)


class KvTombstone(Base):
    """A deleted key: the index of its deletion (and when, so old ones can be reaped)."""

    __tablename__ = "kv_tombstones"
    __repr_keys__ = ("tenant_id", "key", "modify_index")
    __table_args__ = (UniqueConstraint("tenant_id", "key"), Index("ix_kv_tombstones_deleted", "deleted"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    modify_index: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[int] = mapped_column(BigInteger)  # seconds since the epoch
