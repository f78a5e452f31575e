"""Persistence: what we know of shops and of the fulfillment orders assigned to us, and everything we did.

Fulfillment-order ids are not stable on the store's side (partial submits, cancels, moves and splits make new
ones), so each store id gets its own row and rows carry the order and order line item ids that outlive them.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


# The largest number an INTEGER column holds (32 bits on PostgreSQL, whose ids are INTEGER): a larger id names no
# row, and would fail in the database rather than be found missing.
MAX_ROW_ID = 2**31 - 1


class Base(DeclarativeBase):
    pass


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    access_token_ciphertext: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(String(1000), default="")
    fulfillment_service_id: Mapped[str | None] = mapped_column(String(255))
    location_id: Mapped[str | None] = mapped_column(String(255))
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    installed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    uninstalled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    @property
    def active(self) -> bool:
        return self.uninstalled_at is None and self.access_token_ciphertext is not None


class FulfillmentOrder(Base):
    """Our record of one fulfillment order (one store id) assigned to our location."""

    __tablename__ = "fulfillment_orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "store_id"),
        # The operator's queue pages newest first, over every shop or one: these give it its order without a sort.
        Index("ix_fulfillment_orders_created", "created_at", "id"),
        Index("ix_fulfillment_orders_shop_created", "shop_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    store_id: Mapped[str] = mapped_column(String(255))
    order_id: Mapped[str] = mapped_column(String(255), index=True)
    order_name: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(40), index=True)
    store_status: Mapped[str] = mapped_column(String(40), default="")
    store_request_status: Mapped[str] = mapped_column(String(40), default="")
    # When we last read the fulfillment order on the store (the statuses above are what that read found).
    store_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_location_id: Mapped[str | None] = mapped_column(String(255))
    # The store's `updatedAt` when we last read the fulfillment order whole: a request unchanged since is decided
    # on what we hold, after a one-point status read.
    store_updated_at: Mapped[str | None] = mapped_column(String(64))
    # Personal data, kept only as long as needed to ship; emptied on redaction.
    destination: Mapped[dict | None] = mapped_column(JSON)
    expected_ship_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    shop: Mapped[Shop] = relationship()
    line_items: Mapped[list[FulfillmentOrderLineItem]] = relationship(
        back_populates="fulfillment_order",
        order_by="FulfillmentOrderLineItem.id",
        cascade="all, delete-orphan",
    )
    merchant_requests: Mapped[list[MerchantRequest]] = relationship(
        back_populates="fulfillment_order", order_by="MerchantRequest.id", cascade="all, delete-orphan"
    )
    packages: Mapped[list[Package]] = relationship(
        back_populates="fulfillment_order", order_by="Package.sequence", cascade="all, delete-orphan"
    )
    state_changes: Mapped[list[StateChange]] = relationship(
        back_populates="fulfillment_order", order_by="StateChange.id", cascade="all, delete-orphan"
    )

    def read_on_store(self, status: str, request_status: str, at: datetime | None = None) -> None:
        """Note what a read of this fulfillment order on the store found, and when: the operator's queue shows
        the store's statuses as of that read, not as they were at intake."""
        self.store_status = status
        self.store_request_status = request_status
        self.store_read_at = at or utcnow()


class FulfillmentOrderLineItem(Base):
    __tablename__ = "fulfillment_order_line_items"
    __table_args__ = (UniqueConstraint("fulfillment_order_id", "store_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id"), index=True)
    store_id: Mapped[str] = mapped_column(String(255))
    line_item_id: Mapped[str] = mapped_column(String(255))
    sku: Mapped[str | None] = mapped_column(String(255))
    product_title: Mapped[str | None] = mapped_column(String(500))
    total_quantity: Mapped[int] = mapped_column(Integer)
    remaining_quantity: Mapped[int] = mapped_column(Integer)

    fulfillment_order: Mapped[FulfillmentOrder] = relationship(back_populates="line_items")


class MerchantRequest(Base):
    """A note the merchant attached to a fulfillment or cancellation request (never shown to the customer)."""

    __tablename__ = "merchant_requests"
    __table_args__ = (UniqueConstraint("fulfillment_order_id", "kind", "sent_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    message: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[str] = mapped_column(String(64))

    fulfillment_order: Mapped[FulfillmentOrder] = relationship(back_populates="merchant_requests")


class Package(Base):
    """One parcel packed for a fulfillment order; shipping it is one fulfillment on the store.

    `state` goes packed -> shipping -> shipped. `shipping` is written before the store is asked, so a crash
    or a lost response leaves a mark that makes the next attempt look on the store before asking again.
    """

    __tablename__ = "packages"
    __table_args__ = (UniqueConstraint("fulfillment_order_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="packed")
    tracking_number: Mapped[str] = mapped_column(String(255), unique=True)
    carrier: Mapped[str] = mapped_column(String(255))
    tracking_url: Mapped[str | None] = mapped_column(String(1000))
    store_fulfillment_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The name fulfillmentCreate gave ("#1001-F1"); the store's tracking-number pull asks for "#1001.1".
    fulfillment_name: Mapped[str | None] = mapped_column(String(255), index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(40))
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    fulfillment_order: Mapped[FulfillmentOrder] = relationship(back_populates="packages")
    items: Mapped[list[PackageItem]] = relationship(
        back_populates="package", order_by="PackageItem.id", cascade="all, delete-orphan"
    )


class PackageItem(Base):
    __tablename__ = "package_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    package_id: Mapped[int] = mapped_column(ForeignKey("packages.id"), index=True)
    line_item_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_order_line_items.id"))
    quantity: Mapped[int] = mapped_column(Integer)

    package: Mapped[Package] = relationship(back_populates="items")
    line_item: Mapped[FulfillmentOrderLineItem] = relationship()


class StateChange(Base):
    """Append-only: every change of a fulfillment order's state, with its cause, written with the change."""

    __tablename__ = "state_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    fulfillment_order_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_orders.id"), index=True)
    from_state: Mapped[str | None] = mapped_column(String(40))
    to_state: Mapped[str] = mapped_column(String(40))
    cause: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    fulfillment_order: Mapped[FulfillmentOrder] = relationship(back_populates="state_changes")


class Delivery(Base):
    """A callback or webhook we received; the unique key absorbs the store's duplicate deliveries."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("source", "delivery_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_domain: Mapped[str] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(20))
    delivery_key: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(100))
    # Indexed so that rows past the store's retry window are found and pruned without a scan.
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class StockLevel(Base):
    """Units on one shop's shelf of a SKU in our warehouse; what is free is on hand less what is reserved.

    A 3PL keeps every merchant's goods apart: the same SKU in two shops is two shelves. The shelf is what we
    hold at the shop's fulfillment-service location (`Shop.location_id`), the one location the store knows us by.
    """

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("shop_id", "sku"),
        Index("ix_stock_levels_shop_versions", "shop_id", "version", "pushed_version"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    sku: Mapped[str] = mapped_column(String(255))
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    # Every movement counts the shelf's version up, in its own transaction; a push to the store records the version
    # it sent. A shelf whose version is ahead owes the store a push: the marker is written with the change itself,
    # so a worker that dies before pushing loses nothing (`inventory_sync`).
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    pushed_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When the oldest change not yet pushed was made (how stale the store's figure may be).
    push_due_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Reservation(Base):
    """Units held for a fulfillment order line item from accept until shipped (consumed) or released.

    What a shelf holds is summed from its `held` rows alone, through the (shop, SKU, state) index, so the cost
    of asking does not grow with the reservation history.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        UniqueConstraint("line_item_id"),
        Index("ix_reservations_shop_sku_state", "shop_id", "sku", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    line_item_id: Mapped[int] = mapped_column(ForeignKey("fulfillment_order_line_items.id"))
    sku: Mapped[str] = mapped_column(String(255))
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default="held")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StockMovement(Base):
    """Append-only: every change to a shelf or to what is held on it, written with the change.

    `kind` is receipt, adjustment, cycle_count, reservation, shipment or release (`warehouse.Movement`).
    A reservation or release moves no unit (`on_hand_change` 0) but changes what is free to sell; a shipment
    takes units off the shelf and out of their reservation. The ids only grow, so a reader that remembers the
    last id it saw finds every change after it.
    """

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_shop_sku", "shop_id", "sku", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    sku: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(20))
    on_hand_change: Mapped[int] = mapped_column(Integer, default=0)
    reserved_change: Mapped[int] = mapped_column(Integer, default=0)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    available_after: Mapped[int] = mapped_column(Integer)
    fulfillment_order_id: Mapped[int | None] = mapped_column(ForeignKey("fulfillment_orders.id"))
    actor: Mapped[str] = mapped_column(String(255), default="")  # an operator's email, or what acted
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StoreInventoryItem(Base):
    """The store's inventory item one of our shelves is matched to (by SKU), and what we know of its quantity at
    our fulfillment-service location.

    `status` says whether the SKU could be matched: `matched`, `unmatched` (no item with the SKU), `duplicate`
    (several items share it: we do not guess which) or `not_stocked` (the item is not stocked at our location).
    Only a matched item is pushed. `store_on_hand` is the store's `on_hand` at our location as we last set or read
    it: the compare-and-swap value of the next push.
    """

    __tablename__ = "store_inventory_items"
    __table_args__ = (UniqueConstraint("shop_id", "sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"), index=True)
    sku: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20))
    inventory_item_id: Mapped[str | None] = mapped_column(String(255))
    store_on_hand: Mapped[int | None] = mapped_column(Integer)
    # The last of our movements the store's figure accounts for.
    pushed_movement_id: Mapped[int | None] = mapped_column(Integer)
    matched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    pushed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Operator(Base):
    """A warehouse operator who signs in to the dashboard; the password is kept only as a salted scrypt hash."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
