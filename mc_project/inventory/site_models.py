"""Sites: their stored plans and the objects each site owns.

A plan (``SitePlan``) is what ``corpus plan`` made: the blueprint it read (and its hash),
the fingerprint of the inventory rows it read, and its actions (``+ ~ -/+ -``) as JSON.
Applying it runs exactly those actions as one job (``job_id``); it is refused when the
inventory's fingerprint changed since, or when the plan was applied already (``applied``).

A site owns the environments, domains and checks its applied plans made
(``SiteObject``): ``spec`` is the object's part of the blueprint as last applied, which
``corpus site status`` compares with the inventory and ``corpus site destroy`` removes.
"""

import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from mc_project.inventory.models import Base, utcnow

OBJECT_KINDS = ("environment", "domain", "check")


class SitePlan(Base):
    __tablename__ = "site_plans"
    __repr_keys__ = ("id", "site", "job_id")

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    destroy: Mapped[bool] = mapped_column(Boolean, default=False)
    blueprint_hash: Mapped[str] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))  # of the inventory rows the plan read
    blueprint: Mapped[dict] = mapped_column(JSON)
    actions: Mapped[list] = mapped_column(JSON)
    who: Mapped[str | None] = mapped_column(String(255))
    created: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    applied: Mapped[datetime.datetime | None] = mapped_column(DateTime(timezone=True))
    job_id: Mapped[int | None] = mapped_column(Integer)


class SiteObject(Base):
    __tablename__ = "site_objects"
    __repr_keys__ = ("site", "kind", "name")
    __table_args__ = (UniqueConstraint("kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # one of OBJECT_KINDS
    name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict] = mapped_column(JSON)
    changed: Mapped[datetime.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
