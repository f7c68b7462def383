"""Container images: each version of a named image, its build and the nodes holding it.

An ``Image`` row is one version (``name``, ``version``: 1, 2, ... per name, never reused);
``states`` is the state tree it was built from (a directory on the controller, None for the
built-in recipe: the golden image as it is), ``status`` building, ready, failed or removed,
``log`` its build log (kept when the build failed). A name's current version is its highest
ready one. ``golden`` marks ``default:1``: the nodes' golden container itself, not a file.
``ImageNode`` says which nodes hold a version (a golden one is on every node).
"""

import datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, one_of, utcnow

IMAGE_STATUSES = ("building", "ready", "failed", "removed")


class Image(Base):
    __tablename__ = "images"
    __repr_keys__ = ("id", "name", "version", "status")
    __table_args__ = (UniqueConstraint("name", "version"), one_of("status", IMAGE_STATUSES))

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    states: Mapped[str | None] = mapped_column(String(1024))
    states_digest: Mapped[str | None] = mapped_column(String(80))
    digest: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default="building")
    golden: Mapped[bool] = mapped_column(Boolean, default=False)
    who: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    built: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    size_mb: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str | None] = mapped_column(Text)


class ImageNode(Base):
    __tablename__ = "image_nodes"
    __table_args__ = (UniqueConstraint("image_id", "node_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("compute_nodes.id", ondelete="CASCADE"))
