"""Tenants in use, and the API's logins: every compute node and environment
belongs to a tenant, and so does a job the API starts (existing rows go to tenant ``default``, made here when there
are any; ``corpus-controller init`` and the API make it otherwise); users
(local, argon2-hashed, or vouched for by LDAP), their role in each tenant,
bearer tokens (hashed, expiring, revocable), and the audit of changing calls.

Revision ID: 0004
Revises: 0003
"""

import importlib

from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

# Rebuilding compute_nodes in SQLite batch mode needs its foreign keys off, as in 0002.
_0002 = importlib.import_module("mc_project.inventory.migrations.versions.0002_controller")

DEFAULT_TENANT = "default"


def upgrade():
    _0002.without_sqlite_foreign_keys()
    tenants = sa.table('tenants', sa.column('id', sa.Integer), sa.column('name', sa.String))
    bind = op.get_bind()
    existing = any(bind.execute(sa.text("SELECT 1 FROM {} LIMIT 1".format(name))).first()
                   for name in ('compute_nodes', 'environments'))
    if existing and bind.execute(sa.select(tenants.c.id).where(
            tenants.c.name == DEFAULT_TENANT)).first() is None:
        op.execute(tenants.insert().values(name=DEFAULT_TENANT))
    default_id = sa.select(tenants.c.id).where(tenants.c.name == DEFAULT_TENANT).scalar_subquery()

    op.create_table('audit_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user', sa.String(length=255), nullable=True),
    sa.Column('action', sa.String(length=255), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=True),
    sa.Column('tenant', sa.String(length=128), nullable=True),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('result', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entries'))
    )
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_entries_at'), ['at'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('local', 'ldap')", name=op.f('ck_users_source')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('name', name=op.f('uq_users_name'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked', sa.Boolean(), nullable=False),
    sa.CheckConstraint("kind IN ('session', 'api')", name=op.f('ck_api_tokens_kind')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.CheckConstraint("role IN ('viewer', 'deployer', 'admin')", name=op.f('ck_memberships_role')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_memberships_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_memberships_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships')),
    sa.UniqueConstraint('user_id', 'tenant_id', name=op.f('uq_memberships_user_id_tenant_id'))
    )
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_compute_nodes_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_compute_nodes_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'])

    with op.batch_alter_table('environments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_environments_tenant_id'), ['tenant_id'], unique=False)

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tenant_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_jobs_tenant_id_tenants'), 'tenants', ['tenant_id'], ['id'])

    # Every existing node and environment goes to the default tenant.
    for name in ('compute_nodes', 'environments'):
        table = sa.table(name, sa.column('tenant_id', sa.Integer))
        op.execute(table.update().where(table.c.tenant_id.is_(None)).values(tenant_id=default_id))
    _0002.check_sqlite_foreign_keys()


def downgrade():
    _0002.without_sqlite_foreign_keys()
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_tenant_id_tenants'), type_='foreignkey')
        batch_op.drop_column('tenant_id')
    with op.batch_alter_table('environments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_environments_tenant_id'))
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_compute_nodes_tenant_id_tenants'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_compute_nodes_tenant_id'))
        batch_op.drop_column('tenant_id')
    op.drop_table('memberships')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))
    op.drop_table('api_tokens')
    op.drop_table('users')
    with op.batch_alter_table('audit_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_entries_at'))
    op.drop_table('audit_entries')
    _0002.check_sqlite_foreign_keys()
