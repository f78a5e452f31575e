"""inventory pushed to the store: each shelf's version and what was pushed, and the store's item per shelf

Revision ID: 0004_inventory_push
Revises: 0003

Every shelf starts at version 0 with nothing pushed: the first push after the upgrade sets the store's quantity
at our location from our books (as an install does), once each SKU is matched to the store's item.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_inventory_push"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("pushed_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("push_due_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_stock_levels_shop_versions", ["shop_id", "version", "pushed_version"], unique=False)
    # A shelf that exists already owes the store its figure.
    op.execute("UPDATE stock_levels SET version = 1")
    op.create_table(
        "store_inventory_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("inventory_item_id", sa.String(length=255), nullable=True),
        sa.Column("store_on_hand", sa.Integer(), nullable=True),
        sa.Column("pushed_movement_id", sa.Integer(), nullable=True),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "sku"),
    )
    with op.batch_alter_table("store_inventory_items", schema=None) as batch_op:
        batch_op.create_index("ix_store_inventory_items_shop_id", ["shop_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("store_inventory_items", schema=None) as batch_op:
        batch_op.drop_index("ix_store_inventory_items_shop_id")
    op.drop_table("store_inventory_items")
    with op.batch_alter_table("stock_levels", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_levels_shop_versions")
        batch_op.drop_column("push_due_since")
        batch_op.drop_column("pushed_version")
        batch_op.drop_column("version")
