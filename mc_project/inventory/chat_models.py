"""The chat bridge's tables: each tenant's chat settings and the chat users it allows.

A tenant's outgoing webhook URL is a credential: it is kept in the ``secrets`` table
(encrypted with the controller's key, owner ``chat:<tenant id>``), not here. The
incoming shared secret is kept as its SHA-256 only, as API tokens are. A chat user
acts as a corpus login, whose role in the tenant decides what they may ask.
"""

import datetime

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, utcnow


class ChatSettings(Base):
    """A tenant's chat bridge: the hash of its incoming secret, who set it and when."""

    __tablename__ = "chat_settings"
    __repr_keys__ = ("tenant_id", "updated_by")

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    updated: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(255))


class ChatUser(Base):
    """A chat user name of a tenant's chat, and the corpus login it acts as."""

    __tablename__ = "chat_users"
    __repr_keys__ = ("tenant_id", "chat_name", "login")
    __table_args__ = (UniqueConstraint("tenant_id", "chat_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("chat_settings.tenant_id", ondelete="CASCADE"))
    chat_name: Mapped[str] = mapped_column(String(128))
    login: Mapped[str] = mapped_column(String(255))
