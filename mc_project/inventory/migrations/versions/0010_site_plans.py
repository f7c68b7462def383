"""Sites: stored plans and the objects each site owns (see ``mc_project.inventory.site_models``).

Revision ID: 0010
Revises: 0009
"""

from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('site_plans',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('destroy', sa.Boolean(), nullable=False),
    sa.Column('blueprint_hash', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('blueprint', sa.JSON(), nullable=False),
    sa.Column('actions', sa.JSON(), nullable=False),
    sa.Column('who', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('applied', sa.DateTime(timezone=True), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_site_plans_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_plans'))
    )
    op.create_index(op.f('ix_site_plans_site'), 'site_plans', ['site'], unique=False)
    op.create_table('site_objects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('site', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('spec', sa.JSON(), nullable=False),
    sa.Column('changed', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_site_objects_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_site_objects')),
    sa.UniqueConstraint('kind', 'name', name=op.f('uq_site_objects_kind_name'))
    )
    op.create_index(op.f('ix_site_objects_site'), 'site_objects', ['site'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_site_objects_site'), table_name='site_objects')
    op.drop_table('site_objects')
    op.drop_index(op.f('ix_site_plans_site'), table_name='site_plans')
    op.drop_table('site_plans')
