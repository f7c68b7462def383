"""The controller's inventory database (SQLAlchemy models, Alembic migrations).

``db.init(url)`` creates or migrates it, ``db.session(url)`` opens a transaction;
the tables are in ``models`` and, for the fleet (cells, hosts, groups, variables),
``fleet_models``; the key/value store's in ``kv_models``. Importing the package
registers ``backed_hosts``' events, so every node and environment made anywhere is a host.
"""

from mc_project.inventory import (  # noqa: F401
    backed_hosts,
    chat_models,
    compliance_models,
    db,
    fleet_models,
    health_models,
    image_models,
    kv_models,
    models,
    site_models,
)
