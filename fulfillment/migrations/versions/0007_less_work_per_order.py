"""less work per order: the store's updatedAt kept with a fulfillment order, deliveries found by age to prune

Revision ID: 0007
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fulfillment_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_updated_at", sa.String(length=64), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_received_at", ["received_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_received_at")
    with op.batch_alter_table("fulfillment_orders", schema=None) as batch_op:
        batch_op.drop_column("store_updated_at")
