"""queue at scale: when we last read each fulfillment order on the store, and the queue's paging indexes

Revision ID: 0005
Revises: 0003

`store_read_at` starts empty: the dashboard shows the intake time until the next re-read fills it. The two indexes
give the operator's queue its newest-first order (over every shop, or one shop) without sorting the table.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004_inventory_push"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fulfillment_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("store_read_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_fulfillment_orders_created", ["created_at", "id"], unique=False)
        batch_op.create_index("ix_fulfillment_orders_shop_created", ["shop_id", "created_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fulfillment_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_fulfillment_orders_shop_created")
        batch_op.drop_index("ix_fulfillment_orders_created")
        batch_op.drop_column("store_read_at")
