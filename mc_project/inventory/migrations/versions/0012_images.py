"""Container images: their versions, builds and nodes (see ``mc_project.inventory.image_models``),
and the image each environment was cloned from.

Revision ID: 0012
Revises: 0011
"""

import datetime
import importlib

from alembic import op
import sqlalchemy as sa

_0002 = importlib.import_module("mc_project.inventory.migrations.versions.0002_controller")


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('images',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('states', sa.String(length=1024), nullable=True),
    sa.Column('states_digest', sa.String(length=80), nullable=True),
    sa.Column('digest', sa.String(length=80), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('golden', sa.Boolean(), nullable=False),
    sa.Column('who', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('built', sa.DateTime(timezone=True), nullable=True),
    sa.Column('size_mb', sa.Integer(), nullable=True),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('log', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('building', 'ready', 'failed', 'removed')", name=op.f('ck_images_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_images')),
    sa.UniqueConstraint('name', 'version', name=op.f('uq_images_name_version'))
    )
    op.create_index(op.f('ix_images_name'), 'images', ['name'], unique=False)
    op.create_table('image_nodes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['images.id'], name=op.f('fk_image_nodes_image_id_images'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['compute_nodes.id'], name=op.f('fk_image_nodes_node_id_compute_nodes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_image_nodes')),
    sa.UniqueConstraint('image_id', 'node_id', name=op.f('uq_image_nodes_image_id_node_id'))
    )
    # default:1, the nodes' golden image, is in the catalog from the start (images.DEFAULT_IMAGE).
    images = sa.table('images', sa.column('name', sa.String), sa.column('version', sa.Integer),
                      sa.column('status', sa.String), sa.column('golden', sa.Boolean), sa.column('who', sa.String),
                      sa.column('created', sa.DateTime(timezone=True)), sa.column('built', sa.DateTime(timezone=True)),
                      sa.column('message', sa.Text))
    now = datetime.datetime.now(datetime.timezone.utc)
    op.bulk_insert(images, [{'name': 'default', 'version': 1, 'status': 'ready', 'golden': True, 'who': 'corpus',
                             'created': now, 'built': now,
                             'message': "the nodes' golden image (the Debian template, corpus's packages, the "
                                        "minion's venv)"}])
    # A plain ADD COLUMN on every backend: no table is rebuilt.
    op.add_column('environments', sa.Column('image', sa.String(length=128), nullable=True))


def downgrade():
    _0002.without_sqlite_foreign_keys()  # SQLite rebuilds environments: its projects must stay
    with op.batch_alter_table('environments') as batch:
        batch.drop_column('image')
    _0002.check_sqlite_foreign_keys()
    op.drop_table('image_nodes')
    op.drop_index(op.f('ix_images_name'), table_name='images')
    op.drop_table('images')
