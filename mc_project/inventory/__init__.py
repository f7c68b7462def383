"""The controller's inventory database (SQLAlchemy models, Alembic migrations).

``db.init(url)`` creates or migrates it, ``db.session(url)`` opens a transaction;
the tables are in ``models``.
"""

from mc_project.inventory import db, models  # noqa: F401
