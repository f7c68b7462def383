"""Checks, their states and history, handlers, silences and notifications.

Revision ID: 0008
Revises: 0007
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('health_handlers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=2048), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('repeat', sa.Integer(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('mail', 'webhook')", name=op.f('ck_health_handlers_kind')),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_health_handlers_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_health_handlers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_handlers')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_health_handlers_tenant_id_name'))
    )
    op.create_index(op.f('ix_health_handlers_group_id'), 'health_handlers', ['group_id'], unique=False)
    op.create_index(op.f('ix_health_handlers_tenant_id'), 'health_handlers', ['tenant_id'], unique=False)
    op.create_table('health_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('interval', sa.Integer(), nullable=False),
    sa.Column('timeout', sa.Integer(), nullable=False),
    sa.Column('retries', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('http', 'tcp', 'script', 'ttl')", name=op.f('ck_health_checks_kind')),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_health_checks_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_health_checks_host_id_hosts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_health_checks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_checks')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_health_checks_tenant_id_name'))
    )
    op.create_index(op.f('ix_health_checks_group_id'), 'health_checks', ['group_id'], unique=False)
    op.create_index(op.f('ix_health_checks_host_id'), 'health_checks', ['host_id'], unique=False)
    op.create_index(op.f('ix_health_checks_tenant_id'), 'health_checks', ['tenant_id'], unique=False)
    op.create_table('check_states',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('check_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('since', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_state', sa.String(length=16), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('output', sa.Text(), nullable=True),
    sa.Column('checked', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notified', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['check_id'], ['health_checks.id'], name=op.f('fk_check_states_check_id_health_checks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_check_states_host_id_hosts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_states')),
    sa.UniqueConstraint('check_id', 'host_id', name=op.f('uq_check_states_check_id_host_id'))
    )
    op.create_index(op.f('ix_check_states_expires'), 'check_states', ['expires'], unique=False)
    op.create_index(op.f('ix_check_states_host_id'), 'check_states', ['host_id'], unique=False)
    op.create_table('health_silences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('check_id', sa.Integer(), nullable=True),
    sa.Column('who', sa.String(length=255), nullable=False),
    sa.Column('why', sa.Text(), nullable=False),
    sa.Column('starts', sa.DateTime(timezone=True), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['check_id'], ['health_checks.id'], name=op.f('fk_health_silences_check_id_health_checks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_health_silences_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_health_silences_host_id_hosts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_health_silences_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_silences'))
    )
    op.create_index(op.f('ix_health_silences_tenant_id'), 'health_silences', ['tenant_id'], unique=False)
    op.create_index(op.f('ix_health_silences_until'), 'health_silences', ['until'], unique=False)
    op.create_table('check_history',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('hard', sa.Boolean(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('output', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['state_id'], ['check_states.id'], name=op.f('fk_check_history_state_id_check_states'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_check_history'))
    )
    op.create_index('ix_check_history_state_id_at', 'check_history', ['state_id', 'at'], unique=False)
    op.create_table('health_notifications',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('state_id', sa.Integer(), nullable=True),
    sa.Column('silence_id', sa.Integer(), nullable=True),
    sa.Column('handler_name', sa.String(length=128), nullable=False),
    sa.Column('check_name', sa.String(length=128), nullable=False),
    sa.Column('host_name', sa.String(length=255), nullable=False),
    sa.Column('previous', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('repeat', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('sent', 'suppressed', 'failed')", name=op.f('ck_health_notifications_status')),
    sa.ForeignKeyConstraint(['handler_id'], ['health_handlers.id'], name=op.f('fk_health_notifications_handler_id_health_handlers'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['silence_id'], ['health_silences.id'], name=op.f('fk_health_notifications_silence_id_health_silences'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['state_id'], ['check_states.id'], name=op.f('fk_health_notifications_state_id_check_states'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_health_notifications_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_notifications'))
    )
    op.create_index(op.f('ix_health_notifications_at'), 'health_notifications', ['at'], unique=False)
    op.create_index(op.f('ix_health_notifications_state_id'), 'health_notifications', ['state_id'], unique=False)
    op.create_index(op.f('ix_health_notifications_tenant_id'), 'health_notifications', ['tenant_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_health_notifications_tenant_id'), table_name='health_notifications')
    op.drop_index(op.f('ix_health_notifications_state_id'), table_name='health_notifications')
    op.drop_index(op.f('ix_health_notifications_at'), table_name='health_notifications')
    op.drop_table('health_notifications')
    op.drop_index('ix_check_history_state_id_at', table_name='check_history')
    op.drop_table('check_history')
    op.drop_index(op.f('ix_health_silences_until'), table_name='health_silences')
    op.drop_index(op.f('ix_health_silences_tenant_id'), table_name='health_silences')
    op.drop_table('health_silences')
    op.drop_index(op.f('ix_check_states_host_id'), table_name='check_states')
    op.drop_index(op.f('ix_check_states_expires'), table_name='check_states')
    op.drop_table('check_states')
    op.drop_index(op.f('ix_health_checks_tenant_id'), table_name='health_checks')
    op.drop_index(op.f('ix_health_checks_host_id'), table_name='health_checks')
    op.drop_index(op.f('ix_health_checks_group_id'), table_name='health_checks')
    op.drop_table('health_checks')
    op.drop_index(op.f('ix_health_handlers_tenant_id'), table_name='health_handlers')
    op.drop_index(op.f('ix_health_handlers_group_id'), table_name='health_handlers')
    op.drop_table('health_handlers')
