"""Pushing our shelves to the store's inventory, on a real SQLite database with a fake store behind the operations:
coalescing, compare-and-swap, lost answers under one idempotency key, matching by SKU and reconciliation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from fulfillment import inventory_sync, stock
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Shop, StockLevel, StockMovement
from fulfillment.shops import save_token
from fulfillment.store import operations as ops
from fulfillment.store.errors import StoreUnavailable, UserError, UserErrors

SHOP = "push-shop.myshopify.com"
LOCATION = "gid://shopify/Location/77"


class FakeStore:
    """The store's inventory at our location as the operations see it: `on_hand` per item (None: not stocked),
    `@idempotent` keys (a repeat with the same input answers as the first time; a refused call keeps no key),
    `changeFromQuantity` as compare-and-swap, and answers it can lose after applying."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}
        self.keys: dict[str, str] = {}
        self.calls: list[dict] = []
        self.lose_answers = 0
        self.applied = 0

    def add(self, sku: str, on_hand: int | None = 0) -> str:
        item_id = f"gid://shopify/InventoryItem/{len(self.items) + 1}"
        self.items[item_id] = {"sku": sku, "on_hand": on_hand}
        return item_id

    def on_hand(self, sku: str) -> int | None:
        (item,) = [i for i in self.items.values() if i["sku"] == sku]
        return item["on_hand"]

    def items_at(self, client, query: str, location_id: str) -> list[ops.InventoryItem]:
        assert location_id == LOCATION
        terms = [t.strip() for t in query.split(" OR ")]
        found = []
        for item_id, item in self.items.items():
            if f"sku:{item['sku']}" in terms or f"id:{item_id.rsplit('/', 1)[-1]}" in terms:
                found.append(ops.InventoryItem(item_id, item["sku"], item["on_hand"]))
        return found

    def location(self, client, location_id: str) -> list[ops.InventoryItem]:
        return [ops.InventoryItem(i, v["sku"], v["on_hand"]) for i, v in self.items.items() if v["on_hand"] is not None]

    def set(self, client, **kw):
        answer = self._set(**kw)
        if self.lose_answers:  # a proxy drops the answer, whatever it was
            self.lose_answers -= 1
            raise StoreUnavailable("HTTP 502", maybe_applied=True)
        return answer

    def _set(self, *, name, reason, reference_document_uri, quantities, idempotency_key):
        call = {"name": name, "reason": reason, "uri": reference_document_uri, "key": idempotency_key}
        call["quantities"] = [(q.inventory_item_id, q.quantity, q.change_from) for q in quantities]
        self.calls.append(call)
        fingerprint = json.dumps([name, reason, reference_document_uri, call["quantities"]])
        if idempotency_key in self.keys:
            if self.keys[idempotency_key] == fingerprint:
                return "gid://shopify/InventoryAdjustmentGroup/replayed"
            raise UserErrors([UserError(None, "mismatch", "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")])
        stale = [
            UserError(("input", "quantities", str(i), "changeFromQuantity"), "stale", "CHANGE_FROM_QUANTITY_STALE")
            for i, q in enumerate(quantities)
            if self.items[q.inventory_item_id]["on_hand"] != q.change_from
        ]
        if stale:
            raise UserErrors(stale)
        for q in quantities:
            self.items[q.inventory_item_id]["on_hand"] = q.quantity
        self.applied += 1
        self.keys[idempotency_key] = fingerprint
        return "gid://shopify/InventoryAdjustmentGroup/1"


@pytest.fixture
def store(monkeypatch) -> FakeStore:
    fake = FakeStore()
    monkeypatch.setattr(ops, "inventory_items_at", fake.items_at)
    monkeypatch.setattr(ops, "location_inventory", fake.location)
    monkeypatch.setattr(ops, "set_inventory_quantities", fake.set)
    return fake


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    shop_id = save_token(context, SHOP, "token")
    with context.db.transaction() as session:
        session.get(Shop, shop_id).location_id = LOCATION
    yield context
    context.db.dispose()


def shop_id(ctx) -> int:
    with ctx.db.transaction() as session:
        return session.scalar(select(Shop.id))


def change(ctx, fn) -> StockMovement:
    with ctx.db.transaction() as session:
        movement = fn(ctx.warehouse(session))
        return movement


def push(ctx) -> inventory_sync.PushResult:
    return inventory_sync.push_inventory(ctx, shop_id(ctx), sleep=lambda s: None)


def owed(ctx) -> list[str]:
    with ctx.db.transaction() as session:
        return list(session.scalars(select(StockLevel.sku).where(StockLevel.version > StockLevel.pushed_version)).all())


def test_a_receipt_sets_on_hand_at_our_location_naming_the_movement(ctx, store):
    store.add("TEE")
    movement = change(ctx, lambda w: w.receive(shop_id(ctx), "TEE", 5))
    assert owed(ctx) == ["TEE"]

    result = push(ctx)

    assert store.on_hand("TEE") == 5
    (call,) = store.calls
    assert call["name"] == "on_hand" and call["reason"] == "received"
    assert call["uri"] == f"logistics://warehouse-fulfillment/stock-movements/{movement.id}"
    assert call["key"].startswith(f"stock-{shop_id(ctx)}-m{movement.id}-")
    assert call["quantities"] == [("gid://shopify/InventoryItem/1", 5, 0)]
    assert (result.pushed, result.mutations, owed(ctx)) == (1, 1, [])
    assert push(ctx).mutations == 0  # nothing owed, nothing sent


def test_many_movements_of_many_items_become_one_call_of_the_latest_figures(ctx, store):
    for sku in ("A", "B", "C"):
        store.add(sku)
    sid = shop_id(ctx)
    for _ in range(4):
        change(ctx, lambda w: w.receive(sid, "A", 2))
        change(ctx, lambda w: w.receive(sid, "B", 1))
    change(ctx, lambda w: w.receive(sid, "C", 9))
    change(ctx, lambda w: w.adjust(sid, "C", -3, note="damaged"))

    push(ctx)

    assert (store.on_hand("A"), store.on_hand("B"), store.on_hand("C")) == (8, 4, 6)
    # Receipts and a correction have different reasons: one call each, each carrying every item of its reason.
    assert sorted(len(c["quantities"]) for c in store.calls) == [1, 2]


def test_a_reservation_or_a_shipment_leaves_nothing_to_send(ctx, store):
    store.add("MUG")
    sid = shop_id(ctx)
    change(ctx, lambda w: w.set_stock(sid, "MUG", 4))
    push(ctx)
    with ctx.db.transaction() as session:
        record = FulfillmentOrder(
            shop_id=sid,
            store_id="gid://shopify/FulfillmentOrder/1",
            order_id="gid://shopify/Order/1",
            state="requested",
            line_items=[
                FulfillmentOrderLineItem(
                    store_id="gid://shopify/FulfillmentOrderLineItem/1",
                    line_item_id="gid://shopify/LineItem/1",
                    sku="MUG",
                    total_quantity=3,
                    remaining_quantity=3,
                )
            ],
        )
        session.add(record)
        session.flush()
        ctx.warehouse(session).reserve(record)
        line_id = record.line_items[0].id
    assert owed(ctx) == ["MUG"]
    assert push(ctx).unchanged == 1  # on hand did not move: the store's committed count covers the order
    # The store takes shipped units off on_hand itself when the fulfillment is made, before our books do.
    store.items["gid://shopify/InventoryItem/1"]["on_hand"] = 1
    with ctx.db.transaction() as session:
        ctx.warehouse(session).ship([(line_id, 3)])
    result = push(ctx)
    assert (result.unchanged, result.mutations, store.on_hand("MUG")) == (1, 0, 1)
    assert len(store.calls) == 1


def test_a_stale_figure_is_read_again_and_the_push_goes_through(ctx, store):
    store.add("CAP", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "CAP", 3))
    push(ctx)
    store.items["gid://shopify/InventoryItem/1"]["on_hand"] = 11  # the merchant typed a number on the store
    change(ctx, lambda w: w.receive(sid, "CAP", 2))

    result = push(ctx)

    assert store.on_hand("CAP") == 5
    assert result.stale == 1
    first, second = store.calls[1:]
    assert first["quantities"][0][2] == 3 and second["quantities"][0][2] == 11
    assert first["key"] == second["key"]  # a refused call keeps no key: the retry may use it


def test_a_lost_answer_is_sent_again_under_the_same_key_and_applied_once(ctx, store):
    store.add("BAG", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "BAG", 7))
    store.lose_answers = 1

    result = push(ctx)

    assert store.on_hand("BAG") == 7
    assert store.applied == 1
    first, second = store.calls
    assert first == second  # same key, same input: the store answered the repeat as it did the first
    assert (result.lost_answers, result.pushed, owed(ctx)) == (1, 1, [])


def test_answers_lost_until_the_task_gives_up_are_sent_again_by_the_next_round_under_the_same_key(ctx, store):
    store.add("BAG", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "BAG", 7))
    store.lose_answers = inventory_sync.LOST_ANSWER_RETRIES + 1
    with pytest.raises(StoreUnavailable):
        push(ctx)
    assert owed(ctx) == ["BAG"]

    push(ctx)

    assert {c["key"] for c in store.calls} == {store.calls[0]["key"]}
    assert (store.applied, store.on_hand("BAG"), owed(ctx)) == (1, 7, [])


def test_skus_the_store_cannot_match_are_recorded_not_guessed(ctx, store):
    store.add("TWIN")
    store.add("TWIN")
    store.add("ELSEWHERE", on_hand=None)
    sid = shop_id(ctx)
    for sku in ("TWIN", "ELSEWHERE", "NOWHERE"):
        change(ctx, lambda w, sku=sku: w.receive(sid, sku, 1))

    result = push(ctx)

    assert store.calls == [] and result.not_matched == 3
    with ctx.db.transaction() as session:
        statuses = {sku: row.status for sku, row in inventory_sync.store_items(session, sid).items()}
    assert statuses == {"TWIN": "duplicate", "ELSEWHERE": "not_stocked", "NOWHERE": "unmatched"}
    shown = {row.sku: row.store_item_note for row in stock.levels(ctx, sid)}  # the dashboard's stock page
    assert shown["NOWHERE"] == "no item with this SKU on the store: not pushed"
    assert shown["TWIN"] == "several items on the store have this SKU: not pushed"
    assert owed(ctx) == []  # not retried every round: the reconciliation looks again


def test_reconciliation_repairs_a_merchants_edit_and_finds_an_item_created_later(ctx, store):
    store.add("TEE", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "TEE", 4))
    change(ctx, lambda w: w.receive(sid, "LATER", 2))
    push(ctx)
    store.items["gid://shopify/InventoryItem/1"]["on_hand"] = 40
    store.add("LATER", on_hand=0)

    result = inventory_sync.reconcile(ctx, sid, sleep=lambda s: None)

    assert (result.checked, result.drifted) == (1, 1)
    assert store.on_hand("TEE") == 4
    repair = store.calls[-1]
    assert repair["reason"] == "correction" and repair["quantities"] == [("gid://shopify/InventoryItem/1", 4, 40)]
    assert owed(ctx) == ["LATER"]  # matched now, so owed its first push
    push(ctx)
    assert store.on_hand("LATER") == 2


def test_an_install_pushes_every_shelf_again(ctx, store):
    store.add("TEE", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "TEE", 4))
    push(ctx)
    store.items["gid://shopify/InventoryItem/1"]["on_hand"] = 9
    with ctx.db.transaction() as session:
        inventory_sync.on_install(session, sid)
    assert owed(ctx) == ["TEE"]
    push(ctx)
    assert store.on_hand("TEE") == 4


def test_a_sku_with_a_package_being_shipped_waits_for_the_next_round(ctx, store):
    from fulfillment.models import Package, PackageItem

    store.add("BOX", on_hand=0)
    sid = shop_id(ctx)
    change(ctx, lambda w: w.receive(sid, "BOX", 5))
    with ctx.db.transaction() as session:
        line = FulfillmentOrderLineItem(
            store_id="gid://shopify/FulfillmentOrderLineItem/9",
            line_item_id="gid://shopify/LineItem/9",
            sku="BOX",
            total_quantity=1,
            remaining_quantity=1,
        )
        record = FulfillmentOrder(
            shop_id=sid,
            store_id="gid://shopify/FulfillmentOrder/9",
            order_id="gid://shopify/Order/9",
            state="packed",
            line_items=[line],
        )
        session.add(record)
        session.flush()
        package = Package(
            fulfillment_order_id=record.id, sequence=1, state="shipping", tracking_number="T1", carrier="DHL"
        )
        package.items = [PackageItem(line_item_id=line.id, quantity=1)]
        session.add(package)

    result = push(ctx)

    # The store may have taken the unit off already and our books not yet: neither figure is safe to write.
    assert (result.deferred, store.calls, owed(ctx)) == (1, [], ["BOX"])
    with ctx.db.transaction() as session:
        session.get(Package, package.id).state = "shipped"
    push(ctx)
    assert store.on_hand("BOX") == 5
