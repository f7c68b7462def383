"""The fleet inventory: regions of a tenant and their cells, hosts (every compute node
and environment is one, made here for those that exist; any other machine can be
added), labels, groups within groups, variables on a tenant, region, cell, group or
host, and the change log of those objects.

Existing regions go to tenant ``default`` (made here when there are any).

Revision ID: 0005
Revises: 0004
"""

import importlib

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

# Rebuilding regions in SQLite batch mode needs its foreign keys off, as in 0002.
_0002 = importlib.import_module("mc_project.inventory.migrations.versions.0002_controller")

DEFAULT_TENANT = "default"

# The hosts of the nodes and environments that exist (later ones are made as they are).
ADOPT_HOSTS = (
    "INSERT INTO hosts (name, kind, node_id, created) SELECT name, 'node', id, CURRENT_TIMESTAMP"
    " FROM compute_nodes",
    "INSERT INTO hosts (name, kind, environment_id, created) SELECT name, 'environment', id, CURRENT_TIMESTAMP"
    " FROM environments",
)


def upgrade():
    _0002.without_sqlite_foreign_keys()
    bind = op.get_bind()
    tenants = sa.table('tenants', sa.column('id', sa.Integer), sa.column('name', sa.String))
    if bind.execute(sa.text("SELECT 1 FROM regions LIMIT 1")).first() is not None and bind.execute(
            sa.select(tenants.c.id).where(tenants.c.name == DEFAULT_TENANT)).first() is None:
        op.execute(tenants.insert().values(name=DEFAULT_TENANT))
    default_id = sa.select(tenants.c.id).where(tenants.c.name == DEFAULT_TENANT).scalar_subquery()

    op.create_table('inventory_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('object_type', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('object_name', sa.String(length=255), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.CheckConstraint("action IN ('create', 'update', 'delete')", name=op.f('ck_inventory_changes_action')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_changes'))
    )
    with op.batch_alter_table('inventory_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_changes_at'), ['at'], unique=False)
        batch_op.create_index('ix_inventory_changes_object', ['object_type', 'object_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_inventory_changes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('host_groups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_host_groups_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_host_groups')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_host_groups_tenant_id_name'))
    )
    op.create_table('inventory_variables',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('object_id', sa.Integer(), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=False),
    sa.Column('secret_keys', sa.JSON(), nullable=False),
    sa.CheckConstraint("level IN ('tenant', 'region', 'cell', 'group', 'host')", name=op.f('ck_inventory_variables_level')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_inventory_variables_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inventory_variables')),
    sa.UniqueConstraint('level', 'object_id', name=op.f('uq_inventory_variables_level_object_id'))
    )
    with op.batch_alter_table('inventory_variables', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_inventory_variables_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('cells',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_cells_region_id_regions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cells')),
    sa.UniqueConstraint('region_id', 'name', name=op.f('uq_cells_region_id_name'))
    )
    with op.batch_alter_table('cells', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cells_region_id'), ['region_id'], unique=False)

    op.create_table('host_group_children',
    sa.Column('parent_id', sa.Integer(), nullable=False),
    sa.Column('child_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['host_groups.id'], name=op.f('fk_host_group_children_child_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['host_groups.id'], name=op.f('fk_host_group_children_parent_id_host_groups'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('parent_id', 'child_id', name=op.f('pk_host_group_children'))
    )
    with op.batch_alter_table('host_group_children', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_host_group_children_child_id'), ['child_id'], unique=False)

    op.create_table('hosts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('environment_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=255), nullable=True),
    sa.Column('ssh_port', sa.Integer(), nullable=True),
    sa.Column('ssh_user', sa.String(length=64), nullable=True),
    sa.Column('minion_id', sa.String(length=255), nullable=True),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.Column('cell_id', sa.Integer(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('node', 'environment', 'machine')", name=op.f('ck_hosts_kind')),
    sa.ForeignKeyConstraint(['cell_id'], ['cells.id'], name=op.f('fk_hosts_cell_id_cells')),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_hosts_environment_id_environments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['compute_nodes.id'], name=op.f('fk_hosts_node_id_compute_nodes'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['hosts.id'], name=op.f('fk_hosts_parent_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_hosts_region_id_regions')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_hosts_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_hosts')),
    sa.UniqueConstraint('environment_id', name=op.f('uq_hosts_environment_id')),
    sa.UniqueConstraint('minion_id', name=op.f('uq_hosts_minion_id')),
    sa.UniqueConstraint('node_id', name=op.f('uq_hosts_node_id'))
    )
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_hosts_cell_id'), ['cell_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_hosts_name'), ['name'], unique=False)
        batch_op.create_index(batch_op.f('ix_hosts_region_id'), ['region_id'], unique=False)
        batch_op.create_index('ix_hosts_tenant_id_name', ['tenant_id', 'name'], unique=False)

    op.create_table('host_group_members',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_host_group_members_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_host_group_members_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'host_id', name=op.f('pk_host_group_members'))
    )
    with op.batch_alter_table('host_group_members', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_host_group_members_host_id'), ['host_id'], unique=False)

    op.create_table('host_labels',
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=128), nullable=False),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_host_labels_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('host_id', 'label', name=op.f('pk_host_labels'))
    )
    with op.batch_alter_table('host_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_host_labels_label'), ['label'], unique=False)

    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
    op.execute(sa.table('regions', sa.column('tenant_id', sa.Integer)).update().values(tenant_id=default_id))
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.alter_column('tenant_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_constraint(batch_op.f('uq_regions_name'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_regions_tenant_id_name'), ['tenant_id', 'name'])
        batch_op.create_foreign_key(batch_op.f('fk_regions_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'], ondelete='CASCADE')

    for statement in ADOPT_HOSTS:
        op.execute(statement)


def downgrade():
    _0002.without_sqlite_foreign_keys()
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_regions_tenant_id_tenants'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('uq_regions_tenant_id_name'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_regions_name'), ['name'])
        batch_op.drop_column('tenant_id')

    with op.batch_alter_table('host_labels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_labels_label'))

    op.drop_table('host_labels')
    with op.batch_alter_table('host_group_members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_group_members_host_id'))

    op.drop_table('host_group_members')
    with op.batch_alter_table('hosts', schema=None) as batch_op:
        batch_op.drop_index('ix_hosts_tenant_id_name')
        batch_op.drop_index(batch_op.f('ix_hosts_region_id'))
        batch_op.drop_index(batch_op.f('ix_hosts_name'))
        batch_op.drop_index(batch_op.f('ix_hosts_cell_id'))

    op.drop_table('hosts')
    with op.batch_alter_table('host_group_children', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_host_group_children_child_id'))

    op.drop_table('host_group_children')
    with op.batch_alter_table('cells', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_cells_region_id'))

    op.drop_table('cells')
    with op.batch_alter_table('inventory_variables', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_variables_tenant_id'))

    op.drop_table('inventory_variables')
    op.drop_table('host_groups')
    with op.batch_alter_table('inventory_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_inventory_changes_tenant_id'))
        batch_op.drop_index('ix_inventory_changes_object')
        batch_op.drop_index(batch_op.f('ix_inventory_changes_at'))

    op.drop_table('inventory_changes')
