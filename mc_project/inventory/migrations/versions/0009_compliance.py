"""Compliance: rules, waivers, runs and their results per host and rule.

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('compliance_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('rule_name', sa.String(length=128), nullable=True),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('who', sa.String(length=255), nullable=True),
    sa.Column('started', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('totals', sa.JSON(), nullable=False),
    sa.CheckConstraint("mode IN ('rules', 'audit', 'enforce')", name=op.f('ck_compliance_runs_mode')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_compliance_runs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_runs'))
    )
    with op.batch_alter_table('compliance_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_runs_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_runs_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('compliance_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('impact', sa.Float(), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('file', 'pkg_present', 'pkg_absent', 'service_running', 'user_present', 'sysctl', 'sls')", name=op.f('ck_compliance_rules_kind')),
    sa.CheckConstraint("mode IN ('audit', 'enforce')", name=op.f('ck_compliance_rules_mode')),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_compliance_rules_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_compliance_rules_host_id_hosts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_compliance_rules_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_rules')),
    sa.UniqueConstraint('tenant_id', 'name', name=op.f('uq_compliance_rules_tenant_id_name'))
    )
    with op.batch_alter_table('compliance_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_rules_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_rules_host_id'), ['host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_rules_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('compliance_waivers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('group_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('who', sa.String(length=255), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['host_groups.id'], name=op.f('fk_compliance_waivers_group_id_host_groups'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_compliance_waivers_host_id_hosts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rule_id'], ['compliance_rules.id'], name=op.f('fk_compliance_waivers_rule_id_compliance_rules'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_compliance_waivers_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_waivers'))
    )
    with op.batch_alter_table('compliance_waivers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_waivers_rule_id'), ['rule_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_waivers_tenant_id'), ['tenant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_waivers_until'), ['until'], unique=False)

    op.create_table('compliance_results',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=True),
    sa.Column('host_id', sa.Integer(), nullable=True),
    sa.Column('waiver_id', sa.Integer(), nullable=True),
    sa.Column('rule_name', sa.String(length=128), nullable=False),
    sa.Column('host_name', sa.String(length=255), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("mode IN ('audit', 'enforce')", name=op.f('ck_compliance_results_mode')),
    sa.CheckConstraint("status IN ('passed', 'drifted', 'fixed', 'failed', 'waived')", name=op.f('ck_compliance_results_status')),
    sa.ForeignKeyConstraint(['host_id'], ['hosts.id'], name=op.f('fk_compliance_results_host_id_hosts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rule_id'], ['compliance_rules.id'], name=op.f('fk_compliance_results_rule_id_compliance_rules'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['run_id'], ['compliance_runs.id'], name=op.f('fk_compliance_results_run_id_compliance_runs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_compliance_results_tenant_id_tenants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['waiver_id'], ['compliance_waivers.id'], name=op.f('fk_compliance_results_waiver_id_compliance_waivers'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_results'))
    )
    with op.batch_alter_table('compliance_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_compliance_results_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_results_host_id'), ['host_id'], unique=False)
        batch_op.create_index('ix_compliance_results_rule_id_host_id', ['rule_id', 'host_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_results_run_id'), ['run_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_compliance_results_tenant_id'), ['tenant_id'], unique=False)



def downgrade():
    with op.batch_alter_table('compliance_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_results_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_results_run_id'))
        batch_op.drop_index('ix_compliance_results_rule_id_host_id')
        batch_op.drop_index(batch_op.f('ix_compliance_results_host_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_results_at'))

    op.drop_table('compliance_results')
    with op.batch_alter_table('compliance_waivers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_waivers_until'))
        batch_op.drop_index(batch_op.f('ix_compliance_waivers_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_waivers_rule_id'))

    op.drop_table('compliance_waivers')
    with op.batch_alter_table('compliance_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_rules_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_rules_host_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_rules_group_id'))

    op.drop_table('compliance_rules')
    with op.batch_alter_table('compliance_runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_compliance_runs_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_compliance_runs_job_id'))

    op.drop_table('compliance_runs')
