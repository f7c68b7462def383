"""The chat bridge: each tenant's chat settings and the chat users it allows (see
``mc_project.inventory.chat_models``).

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('chat_settings',
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('updated', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_chat_settings_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_chat_settings')),
    sa.UniqueConstraint('secret_hash', name=op.f('uq_chat_settings_secret_hash'))
    )
    op.create_table('chat_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('chat_name', sa.String(length=128), nullable=False),
    sa.Column('login', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['chat_settings.tenant_id'], name=op.f('fk_chat_users_tenant_id_chat_settings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_users')),
    sa.UniqueConstraint('tenant_id', 'chat_name', name=op.f('uq_chat_users_tenant_id_chat_name'))
    )


def downgrade():
    op.drop_table('chat_users')
    op.drop_table('chat_settings')
    # The tenants' webhook URLs (secrets owned by chat:<tenant id>) go with their settings.
    op.execute("DELETE FROM secrets WHERE owner LIKE 'chat:%'")
