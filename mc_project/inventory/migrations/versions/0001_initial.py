"""Initial inventory: tenants, regions, compute nodes, environments, projects,
SSH keys, DNS records, port mappings, secrets, jobs and job steps.

Revision ID: 0001
Revises:
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('clipboard', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('owner_pid', sa.Integer(), nullable=True),
    sa.Column('owner_host', sa.String(length=255), nullable=True),
    sa.Column('owner_started', sa.Float(), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'running', 'success', 'failed', 'interrupted', 'undone')", name=op.f('ck_jobs_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index(op.f('ix_jobs_target'), 'jobs', ['target'], unique=False)

    op.create_table('regions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('name', name=op.f('uq_regions_name'))
    )
    op.create_table('secrets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_secrets')),
    sa.UniqueConstraint('owner', 'name', name=op.f('uq_secrets_owner_name'))
    )
    op.create_table('tenants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('name', name=op.f('uq_tenants_name'))
    )
    op.create_table('compute_nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('dns_name', sa.String(length=255), nullable=True),
    sa.Column('ssh_port', sa.Integer(), nullable=False),
    sa.Column('slots', sa.Integer(), nullable=False),
    sa.Column('guest_type', sa.String(length=32), nullable=False),
    sa.Column('subnet', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('region_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['region_id'], ['regions.id'], name=op.f('fk_compute_nodes_region_id_regions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_compute_nodes')),
    sa.UniqueConstraint('name', name=op.f('uq_compute_nodes_name'))
    )
    op.create_table('job_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended', sa.DateTime(timezone=True), nullable=True),
    sa.Column('log', sa.Text(), nullable=False),
    sa.Column('undo_data', sa.JSON(), nullable=False),
    sa.CheckConstraint("status IN ('pending', 'running', 'success', 'failed', 'interrupted', 'undone', 'undo_failed')", name=op.f('ck_job_steps_status')),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_job_steps_job_id_jobs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_steps')),
    sa.UniqueConstraint('job_id', 'index', name=op.f('uq_job_steps_job_id_index'))
    )
    op.create_table('environments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('uuid', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.Column('env_type', sa.String(length=16), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.Column('ssh_nat_port', sa.Integer(), nullable=True),
    sa.Column('domains', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("env_type IN ('dev', 'staging', 'prod')", name=op.f('ck_environments_env_type')),
    sa.ForeignKeyConstraint(['node_id'], ['compute_nodes.id'], name=op.f('fk_environments_node_id_compute_nodes')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_environments_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_environments')),
    sa.UniqueConstraint('name', name=op.f('uq_environments_name')),
    sa.UniqueConstraint('node_id', 'ip', name=op.f('uq_environments_node_id_ip')),
    sa.UniqueConstraint('uuid', name=op.f('uq_environments_uuid'))
    )
    op.create_table('dns_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('zone', sa.String(length=255), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('type', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('ttl', sa.Integer(), nullable=False),
    sa.Column('environment_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_dns_records_environment_id_environments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dns_records')),
    sa.UniqueConstraint('name', 'type', 'content', name=op.f('uq_dns_records_name_type_content'))
    )
    op.create_table('port_mappings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('external_port', sa.Integer(), nullable=False),
    sa.Column('environment_id', sa.Integer(), nullable=False),
    sa.Column('internal_port', sa.Integer(), nullable=False),
    sa.Column('protocol', sa.String(length=8), nullable=False),
    sa.CheckConstraint("protocol IN ('tcp', 'udp')", name=op.f('ck_port_mappings_protocol')),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_port_mappings_environment_id_environments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['compute_nodes.id'], name=op.f('fk_port_mappings_node_id_compute_nodes')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_port_mappings')),
    sa.UniqueConstraint('node_id', 'external_port', 'protocol', name=op.f('uq_port_mappings_node_id_external_port_protocol'))
    )
    op.create_table('projects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('environment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_projects_environment_id_environments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_projects')),
    sa.UniqueConstraint('environment_id', 'name', name=op.f('uq_projects_environment_id_name'))
    )
    op.create_table('ssh_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('fingerprint', sa.String(length=255), nullable=True),
    sa.Column('environment_id', sa.Integer(), nullable=True),
    sa.Column('node_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['environment_id'], ['environments.id'], name=op.f('fk_ssh_keys_environment_id_environments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['compute_nodes.id'], name=op.f('fk_ssh_keys_node_id_compute_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ssh_keys')),
    sa.UniqueConstraint('environment_id', 'name', name=op.f('uq_ssh_keys_environment_id_name'))
    )


def downgrade():
    op.drop_table('ssh_keys')
    op.drop_table('projects')
    op.drop_table('port_mappings')
    op.drop_table('dns_records')
    op.drop_table('environments')
    op.drop_table('job_steps')
    op.drop_table('compute_nodes')
    op.drop_table('tenants')
    op.drop_table('secrets')
    op.drop_table('regions')
    op.drop_index(op.f('ix_jobs_target'), table_name='jobs')
    op.drop_table('jobs')
