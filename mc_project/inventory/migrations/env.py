"""Alembic environment for the inventory.

``mc_project.inventory.db.init`` passes an open connection in
``config.attributes["connection"]``; the ``alembic`` command line (with a
``sqlalchemy.url`` option) works too.
"""

from alembic import context
from sqlalchemy import engine_from_config, pool

from mc_project.inventory.models import Base

config = context.config
target_metadata = Base.metadata


def run_with(connection):
    # Batch mode lets later migrations alter SQLite tables (copy and move).
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online():
    connection = config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    connectable = engine_from_config(config.get_section(config.config_ini_section, {}),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        run_with(connection)


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
