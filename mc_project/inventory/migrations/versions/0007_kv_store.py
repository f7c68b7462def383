"""The key/value store for configuration: each tenant's keys, the tombstones of its
deleted keys and its change counter (see ``mc_project.inventory.kv_models``).

Revision ID: 0007
Revises: 0006
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('kv_stores',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('last_index', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kv_stores_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_kv_stores'))
    )
    op.create_table('kv_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('value', sa.LargeBinary(), nullable=False),
    sa.Column('flags', sa.BigInteger(), nullable=False),
    sa.Column('create_index', sa.BigInteger(), nullable=False),
    sa.Column('modify_index', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kv_entries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kv_entries')),
    sa.UniqueConstraint('tenant_id', 'key', name=op.f('uq_kv_entries_tenant_id_key'))
    )
    op.create_table('kv_tombstones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=512), nullable=False),
    sa.Column('modify_index', sa.BigInteger(), nullable=False),
    sa.Column('deleted', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_kv_tombstones_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kv_tombstones')),
    sa.UniqueConstraint('tenant_id', 'key', name=op.f('uq_kv_tombstones_tenant_id_key'))
    )
    with op.batch_alter_table('kv_tombstones', schema=None) as batch_op:
        batch_op.create_index('ix_kv_tombstones_deleted', ['deleted'], unique=False)


def downgrade():
    with op.batch_alter_table('kv_tombstones', schema=None) as batch_op:
        batch_op.drop_index('ix_kv_tombstones_deleted')
    op.drop_table('kv_tombstones')
    op.drop_table('kv_entries')
    op.drop_table('kv_stores')
