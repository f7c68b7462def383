"""Controller: how to reach and use a compute node (minion id, SSH user, proxy
port, NAT port range, bridge, LXC path, install prefix), what an environment is
made of (project, container, disk size, requester, minion id, creation time),
and the pillars the corpus ext_pillar serves.

Revision ID: 0002
Revises: 0001
"""

import datetime

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def without_sqlite_foreign_keys():
    """Let batch mode rebuild SQLite tables that others refer to.

    Batch mode copies a table and drops the original; with foreign keys on,
    SQLite would run the drop as a DELETE and cascade it to the projects, keys,
    DNS records and ports of every environment. The pragma only takes effect
    outside a transaction, which is where an existing database stands when
    this revision starts (a new one is still empty); going down from a later
    revision, the step already done (and recorded) is committed first. The
    connection is then recycled so the next one is opened with foreign keys on again.
    """
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    raw = bind.connection.dbapi_connection
    if raw.in_transaction:
        raw.commit()
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.connection.invalidate(soft=True)


def check_sqlite_foreign_keys():
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError("Migration 0002 left rows pointing at nothing: {}.".format(broken))


def upgrade():
    without_sqlite_foreign_keys()
    op.create_table('pillars',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('minion_id', sa.String(length=255), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pillars')),
    sa.UniqueConstraint('minion_id', name=op.f('uq_pillars_minion_id'))
    )

    # Existing nodes keep their name as minion id; existing environments are
    # dated from this migration. Columns are filled before they become NOT NULL.
    with op.batch_alter_table('compute_nodes') as batch:
        batch.add_column(sa.Column('minion_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('ssh_user', sa.String(length=64), server_default='root', nullable=False))
        batch.add_column(sa.Column('http_port', sa.Integer(), server_default='80', nullable=False))
        batch.add_column(sa.Column('nat_port_min', sa.Integer(), server_default='40000', nullable=False))
        batch.add_column(sa.Column('nat_port_max', sa.Integer(), server_default='40999', nullable=False))
        batch.add_column(sa.Column('bridge', sa.String(length=32), server_default='corpusbr0', nullable=False))
        batch.add_column(sa.Column('lxc_path', sa.String(length=255), server_default='/var/lib/lxc', nullable=False))
        batch.add_column(sa.Column('prefix', sa.String(length=255), server_default='/srv/corpus', nullable=False))
    nodes = sa.table('compute_nodes', sa.column('name', sa.String), sa.column('minion_id', sa.String))
    op.execute(nodes.update().values(minion_id=nodes.c.name))
    with op.batch_alter_table('compute_nodes') as batch:
        batch.alter_column('minion_id', existing_type=sa.String(length=255), nullable=False)
        batch.create_unique_constraint(batch.f('uq_compute_nodes_minion_id'), ['minion_id'])

    with op.batch_alter_table('environments') as batch:
        batch.add_column(sa.Column('project', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('container', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('disk_size_mb', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('requester', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('minion_id', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('created', sa.DateTime(timezone=True), nullable=True))
    environments = sa.table('environments', sa.column('created', sa.DateTime(timezone=True)))
    op.execute(environments.update().values(created=datetime.datetime.now(datetime.timezone.utc)))
    with op.batch_alter_table('environments') as batch:
        batch.alter_column('created', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_unique_constraint(batch.f('uq_environments_minion_id'), ['minion_id'])
        batch.create_unique_constraint(batch.f('uq_environments_node_id_container'), ['node_id', 'container'])
    check_sqlite_foreign_keys()


def downgrade():
    without_sqlite_foreign_keys()
    with op.batch_alter_table('environments') as batch:
        batch.drop_constraint(batch.f('uq_environments_node_id_container'), type_='unique')
        batch.drop_constraint(batch.f('uq_environments_minion_id'), type_='unique')
        batch.drop_column('created')
        batch.drop_column('minion_id')
        batch.drop_column('requester')
        batch.drop_column('disk_size_mb')
        batch.drop_column('container')
        batch.drop_column('project')
    with op.batch_alter_table('compute_nodes') as batch:
        batch.drop_constraint(batch.f('uq_compute_nodes_minion_id'), type_='unique')
        batch.drop_column('prefix')
        batch.drop_column('lxc_path')
        batch.drop_column('bridge')
        batch.drop_column('nat_port_min')
        batch.drop_column('nat_port_max')
        batch.drop_column('http_port')
        batch.drop_column('ssh_user')
        batch.drop_column('minion_id')
    op.drop_table('pillars')
    check_sqlite_foreign_keys()
