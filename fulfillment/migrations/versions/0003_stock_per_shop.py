"""stock per shop: stock levels, reservations and stock movements belong to a shop

Revision ID: 0003
Revises: 0002

One shelf per SKU used to serve every shop. A warehouse serving many merchants keeps each one's goods apart, so a
shelf is now a (shop, SKU) pair. Today's rows are placed like this:

- A reservation belongs to the shop of the fulfillment order whose line item it holds (always known).
- A SKU the orders of exactly one shop use: the whole shelf goes to that shop.
- A SKU the orders of several shops use: the units are split between them, never copied (a copy would sell the
  same units twice). Each shop first gets what its open reservations hold, so every accepted order can still
  ship; the rest is shared in proportion to the units each shop's orders asked for (largest remainder, ties to
  the older shop). Each split is logged as a warning with its figures: count those shelves.
- A SKU no order uses: with exactly one shop, it is that shop's; otherwise it cannot be placed, and is logged
  (SKU and units) and left out.
Each placed shelf gets a `cycle_count` movement from 0 to its units, so its history starts with the migration.

The downgrade adds every shop's shelves of a SKU back into one shelf.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("fulfillment.migrations")
MIGRATION_NOTE = "moved from the shared shelf when stock became per shop"


def place(on_hand: int, asked: dict[int, int], held: dict[int, int], shop_ids: list[int]) -> dict[int, int] | None:
    """The units of one shared shelf per shop (see the module's docstring); None when it cannot be placed.

    `asked` is the units each shop's orders asked for, `held` what each shop's open reservations hold.
    """
    using = sorted(set(asked) | set(held))
    if not using:
        return {shop_ids[0]: on_hand} if len(shop_ids) == 1 else None
    if len(using) == 1:
        return {using[0]: on_hand}
    left = max(0, on_hand)
    share = {}
    for shop_id in using:
        share[shop_id] = min(held.get(shop_id, 0), left)
        left -= share[shop_id]
    total = sum(asked.get(s, 0) for s in using)
    if left and total:
        quotas = {s: divmod(left * asked.get(s, 0), total) for s in using}
        for shop_id, (whole, _) in quotas.items():
            share[shop_id] += whole
        rest = left - sum(whole for whole, _ in quotas.values())
        for shop_id in sorted(using, key=lambda s: (-quotas[s][1], s))[:rest]:
            share[shop_id] += 1
    elif left:
        share[using[0]] += left
    return share


def _stock_tables() -> tuple[sa.Table, sa.Table]:
    op.create_table(
        "stock_levels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "sku"),
    )
    op.create_table(
        "stock_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("on_hand_change", sa.Integer(), nullable=False),
        sa.Column("reserved_change", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("available_after", sa.Integer(), nullable=False),
        sa.Column("fulfillment_order_id", sa.Integer(), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["fulfillment_order_id"], ["fulfillment_orders.id"]),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.create_index("ix_stock_movements_shop_sku", ["shop_id", "sku", "id"], unique=False)
    levels = sa.table(
        "stock_levels", sa.column("shop_id", sa.Integer), sa.column("sku", sa.String), sa.column("on_hand", sa.Integer)
    )
    movements = sa.table(
        "stock_movements",
        *(
            sa.column(name, sa.Integer)
            for name in ("shop_id", "on_hand_change", "reserved_change", "on_hand_after", "available_after")
        ),
        *(sa.column(name, sa.String) for name in ("sku", "kind", "actor", "note")),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    return levels, movements


def upgrade() -> None:
    conn = op.get_bind()
    shared = [(sku, int(on_hand)) for sku, on_hand in conn.execute(sa.text("SELECT sku, on_hand FROM stock_levels"))]
    shop_ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM shops ORDER BY id"))]
    asked: dict[str, dict[int, int]] = {}
    for sku, shop_id, units in conn.execute(
        sa.text(
            "SELECT li.sku, fo.shop_id, SUM(li.total_quantity) FROM fulfillment_order_line_items li "
            "JOIN fulfillment_orders fo ON fo.id = li.fulfillment_order_id "
            "WHERE li.sku IS NOT NULL GROUP BY li.sku, fo.shop_id"
        )
    ):
        asked.setdefault(sku, {})[shop_id] = int(units or 0)

    # Reservations: the shop of the fulfillment order that holds them.
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shop_id", sa.Integer(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE reservations SET shop_id = (SELECT fo.shop_id FROM fulfillment_order_line_items li "
            "JOIN fulfillment_orders fo ON fo.id = li.fulfillment_order_id WHERE li.id = reservations.line_item_id)"
        )
    )
    orphans = conn.execute(sa.text("SELECT id, sku, quantity FROM reservations WHERE shop_id IS NULL")).all()
    for reservation_id, sku, quantity in orphans:
        log.warning(
            "stock_migration reservation=%s sku=%s units=%s: no line item holds it; left out",
            reservation_id,
            sku,
            quantity,
        )
        conn.execute(sa.text("DELETE FROM reservations WHERE id = :id"), {"id": reservation_id})
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.alter_column("shop_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_foreign_key("fk_reservations_shop_id_shops", "shops", ["shop_id"], ["id"])
        batch_op.drop_index("ix_reservations_sku")
        batch_op.create_index("ix_reservations_shop_sku_state", ["shop_id", "sku", "state"], unique=False)
    held: dict[str, dict[int, int]] = {}
    for sku, shop_id, units in conn.execute(
        sa.text("SELECT sku, shop_id, SUM(quantity) FROM reservations WHERE state = 'held' GROUP BY sku, shop_id")
    ):
        held.setdefault(sku, {})[shop_id] = int(units or 0)

    op.drop_table("stock_levels")
    levels, movements = _stock_tables()
    now = datetime.now(UTC)
    level_rows, movement_rows, unplaced = [], [], []
    for sku, on_hand in shared:
        shares = place(on_hand, asked.get(sku, {}), held.get(sku, {}), shop_ids)
        if shares is None:
            unplaced.append((sku, on_hand))
            continue
        if len(shares) > 1:
            figures = ", ".join(f"shop {s}: {n}" for s, n in sorted(shares.items()))
            log.warning(
                "stock_migration sku=%s on_hand=%s split between shops whose orders use it (%s); count these shelves",
                sku,
                on_hand,
                figures,
            )
        for shop_id, units in sorted(shares.items()):
            level_rows.append({"shop_id": shop_id, "sku": sku, "on_hand": units})
            movement_rows.append(
                {
                    "shop_id": shop_id,
                    "sku": sku,
                    "kind": "cycle_count",
                    "on_hand_change": units,
                    "reserved_change": 0,
                    "on_hand_after": units,
                    "available_after": units - held.get(sku, {}).get(shop_id, 0),
                    "actor": "migration",
                    "note": MIGRATION_NOTE,
                    "at": now,
                }
            )
    if level_rows:
        op.bulk_insert(levels, level_rows)
        op.bulk_insert(movements, movement_rows)
    for sku, on_hand in unplaced:
        log.warning(
            "stock_migration sku=%s on_hand=%s not placed: no order uses it and there are %s shops; count it into "
            "its shop's shelf",
            sku,
            on_hand,
            len(shop_ids),
        )
    log.info("stock_migration placed=%s unplaced=%s", len(shared) - len(unplaced), len(unplaced))


def downgrade() -> None:
    conn = op.get_bind()
    merged = [
        {"sku": sku, "on_hand": int(units or 0)}
        for sku, units in conn.execute(sa.text("SELECT sku, SUM(on_hand) FROM stock_levels GROUP BY sku"))
    ]
    with op.batch_alter_table("stock_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_stock_movements_shop_sku")
    op.drop_table("stock_movements")
    op.drop_table("stock_levels")
    op.create_table(
        "stock_levels",
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("sku"),
    )
    if merged:
        op.bulk_insert(sa.table("stock_levels", sa.column("sku", sa.String), sa.column("on_hand", sa.Integer)), merged)
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_shop_sku_state")
        batch_op.drop_constraint("fk_reservations_shop_id_shops", type_="foreignkey")
        batch_op.drop_column("shop_id")
        batch_op.create_index("ix_reservations_sku", ["sku"], unique=False)
