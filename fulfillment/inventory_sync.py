"""Our stock, pushed to each store: the `on_hand` of every item at our fulfillment-service location follows our
shelves, and a periodic reconciliation repairs what drifted.

Why `on_hand`: the store keeps its own count of what its open orders commit at our location and sells
`available = on_hand - committed`. Our shelves are what is physically here, so setting `on_hand` lets the store's
`available` follow our reservations without counting an order twice (once as committed by the store, once as held
by us), and an order the store commits before we accept it is never offered again. A reservation or release moves
no unit: it marks the shelf like any movement, but leaves nothing to send.

How a push goes:
- Every movement counts its shelf's version up in the same transaction (`SimulatedWarehouse._record`); a shelf
  whose version is ahead of the version last pushed is owed a push. Many movements between two pushes become one
  push of the latest figure.
- SKUs are matched to the store's inventory items (`inventoryItems(query: "sku:...")`): exactly one item with the
  SKU, stocked at our location. Anything else is recorded as such (`StoreInventoryItem.status`) for the operator,
  never guessed.
- What the store holds is known from our last push or read (`store_on_hand`), less what shipped since (a
  fulfillment takes its units off the store's `on_hand` itself). That is the compare-and-swap value
  (`changeFromQuantity`); a shelf whose store figure is already right needs no call.
- One `inventorySetQuantities` carries up to `BATCH` items, with an `@idempotent` key made from the latest movement
  it accounts for and its input, a reason, and a `referenceDocumentUri` naming that movement. A lost answer is sent
  again under the same key (the store applies it once); a `CHANGE_FROM_QUANTITY_STALE` re-reads the store's figure
  and sends again; every request goes through the shop's cost budget.
- A SKU with a package being shipped right now is left for the next round: the store has taken the units off
  already and our books have not yet, and either figure would be wrong to write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from fulfillment.context import Context
from fulfillment.models import (
    FulfillmentOrderLineItem,
    Package,
    PackageItem,
    Shop,
    StockLevel,
    StockMovement,
    StoreInventoryItem,
    utcnow,
)
from fulfillment.store import operations as ops
from fulfillment.store.client import StoreClient
from fulfillment.store.errors import StoreUnavailable, UserErrors
from fulfillment.warehouse import Movement

log = logging.getLogger("fulfillment.inventory")

QUANTITY_NAME = "on_hand"
BATCH = 100  # items per inventorySetQuantities: one call costs the same for one item or a hundred
MATCH_BATCH = 25  # SKUs per inventoryItems query
LOST_ANSWER_RETRIES = 3
STALE_RETRIES = 3

MATCHED = "matched"
UNMATCHED = "unmatched"  # the store has no item with the SKU
DUPLICATE = "duplicate"  # several of the store's items have the SKU
NOT_STOCKED = "not_stocked"  # the item is not stocked at our location

# The store's reason for each of our movements; anything else sets the figure right ("correction").
REASONS = {Movement.RECEIPT: "received", Movement.CYCLE_COUNT: "cycle_count_available"}
REPAIR_REASON = "correction"


@dataclass(frozen=True)
class _Due:
    """One shelf owed a push: what it was at `version`, and the store's item for it."""

    level_id: int
    sku: str
    version: int
    on_hand: int
    due_since: datetime | None
    movement_id: int | None  # the latest movement of the shelf
    movement_kind: str | None


@dataclass(frozen=True)
class _Entry:
    due: _Due
    item_id: str
    change_from: int | None

    @property
    def quantity(self) -> int:
        return max(0, self.due.on_hand)


@dataclass
class PushResult:
    """What one round did: items the store was told (`pushed`), items it already held right (`unchanged`), the
    calls it took, and how long the oldest change waited (seconds)."""

    pushed: int = 0
    unchanged: int = 0
    not_matched: int = 0
    mutations: int = 0
    stale: int = 0
    lost_answers: int = 0
    deferred: int = 0
    max_staleness_s: float = 0.0
    staleness_s: list[float] = field(default_factory=list)


@dataclass
class ReconcileResult:
    checked: int = 0
    drifted: int = 0
    repaired: PushResult = field(default_factory=PushResult)


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; they were written in UTC.
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ---------------------------------------------------------------------------------------------------------
# What is owed
# ---------------------------------------------------------------------------------------------------------


def shops_due(session: Session) -> list[int]:
    """The connected shops with a shelf owed a push."""
    return list(
        session.scalars(
            select(StockLevel.shop_id)
            .join(Shop, Shop.id == StockLevel.shop_id)
            .where(
                StockLevel.version > StockLevel.pushed_version,
                Shop.uninstalled_at.is_(None),
                Shop.access_token_ciphertext.is_not(None),
                Shop.location_id.is_not(None),
            )
            .distinct()
        ).all()
    )


def on_install(session: Session, shop_id: int) -> None:
    """An install (or a reinstall) pushes every shelf again, matched afresh: the store's items may be new."""
    session.execute(delete(StoreInventoryItem).where(StoreInventoryItem.shop_id == shop_id))
    session.execute(
        update(StockLevel)
        .where(StockLevel.shop_id == shop_id)
        .values(pushed_version=0, push_due_since=func.coalesce(StockLevel.push_due_since, utcnow()))
    )


def store_items(session: Session, shop_id: int) -> dict[str, StoreInventoryItem]:
    """The store's item matched to each of the shop's SKUs (the stock page shows the ones that are not)."""
    rows = session.scalars(select(StoreInventoryItem).where(StoreInventoryItem.shop_id == shop_id)).all()
    return {row.sku: row for row in rows}


def _latest_movements(session: Session, shop_id: int, skus: Sequence[str]) -> dict[str, tuple[int, str]]:
    latest: dict[str, tuple[int, str]] = {}
    for chunk in _chunks(list(skus), 500):
        newest = (
            select(StockMovement.sku, func.max(StockMovement.id).label("id"))
            .where(StockMovement.shop_id == shop_id, StockMovement.sku.in_(chunk))
            .group_by(StockMovement.sku)
            .subquery()
        )
        for sku, movement_id, kind in session.execute(
            select(newest.c.sku, newest.c.id, StockMovement.kind).join(StockMovement, StockMovement.id == newest.c.id)
        ):
            latest[sku] = (movement_id, kind)
    return latest


def _shipped_since(
    session: Session, shop_id: int, floors: dict[str, int | None], upto: dict[str, int]
) -> dict[str, int]:
    """Units our shipments took off each SKU after its floor movement (the store took them off itself)."""
    if not floors:
        return {}
    lowest = min((f or 0) for f in floors.values())
    shipped: dict[str, int] = {}
    for chunk in _chunks(list(floors), 500):
        rows = session.execute(
            select(StockMovement.id, StockMovement.sku, StockMovement.on_hand_change).where(
                StockMovement.shop_id == shop_id,
                StockMovement.sku.in_(chunk),
                StockMovement.kind == str(Movement.SHIPMENT),
                StockMovement.id > lowest,
            )
        )
        for movement_id, sku, change in rows:
            if (floors[sku] or 0) < movement_id <= upto.get(sku, movement_id):
                shipped[sku] = shipped.get(sku, 0) + change
    return shipped


def _shipping_now(session: Session, shop_id: int) -> set[str]:
    """SKUs of packages marked `shipping`: the store may have taken their units off before our books do."""
    from fulfillment.models import FulfillmentOrder

    return set(
        session.scalars(
            select(FulfillmentOrderLineItem.sku)
            .join(PackageItem, PackageItem.line_item_id == FulfillmentOrderLineItem.id)
            .join(Package, Package.id == PackageItem.package_id)
            .join(FulfillmentOrder, FulfillmentOrder.id == Package.fulfillment_order_id)
            .where(FulfillmentOrder.shop_id == shop_id, Package.state == "shipping")
        ).all()
    )


def _due(session: Session, shop_id: int, levels: Iterable[StockLevel]) -> list[_Due]:
    rows = [(level.id, level.sku, level.version, level.on_hand, level.push_due_since) for level in levels]
    # The latest movement is read after the shelf: one that lands in between counts the version up again, so the
    # shelf stays owed and goes in the next round.
    latest = _latest_movements(session, shop_id, [sku for _, sku, *_ in rows])
    return [
        _Due(
            level_id=level_id,
            sku=sku,
            version=version,
            on_hand=on_hand,
            due_since=_aware(due_since),
            movement_id=latest.get(sku, (None, None))[0],
            movement_kind=latest.get(sku, (None, None))[1],
        )
        for level_id, sku, version, on_hand, due_since in rows
    ]


# ---------------------------------------------------------------------------------------------------------
# Matching our SKUs to the store's inventory items
# ---------------------------------------------------------------------------------------------------------


_PLAIN_SKU = re.compile(r"^[^\s\"'():\\]+$")


def _sku_query(skus: Sequence[str]) -> str:
    return " OR ".join(f"sku:{sku}" if _PLAIN_SKU.match(sku) else f'sku:"{sku}"' for sku in skus)


def match_skus(
    client: StoreClient, location_id: str, skus: Sequence[str]
) -> dict[str, tuple[str, ops.InventoryItem | None]]:
    """Each SKU's status, and the store's item when there is exactly one with that SKU."""
    found: dict[str, list[ops.InventoryItem]] = {sku: [] for sku in skus}
    for chunk in _chunks(list(skus), MATCH_BATCH):
        for item in ops.inventory_items_at(client, _sku_query(chunk), location_id):
            # The store's search is looser than equality: only the exact SKU counts.
            if item.sku in found:
                found[item.sku].append(item)
    result: dict[str, tuple[str, ops.InventoryItem | None]] = {}
    for sku, items in found.items():
        if not items:
            result[sku] = (UNMATCHED, None)
        elif len(items) > 1:
            result[sku] = (DUPLICATE, None)
        elif items[0].on_hand is None:
            result[sku] = (NOT_STOCKED, items[0])
        else:
            result[sku] = (MATCHED, items[0])
    return result


def _save_matches(
    session: Session,
    shop_id: int,
    matches: dict[str, tuple[str, ops.InventoryItem | None]],
    latest: dict[str, int | None],
) -> None:
    rows = store_items(session, shop_id)
    now = utcnow()
    for sku, (status, item) in matches.items():
        row = rows.get(sku)
        if row is None:
            row = StoreInventoryItem(shop_id=shop_id, sku=sku)
            session.add(row)
        if row.status != status:
            log.info("inventory.match shop=%s sku=%s status=%s item=%s", shop_id, sku, status, item and item.id)
        row.status = status
        row.inventory_item_id = item.id if item is not None else None
        row.store_on_hand = item.on_hand if item is not None else None
        # What we just read is the store's figure now: shipments before it are in it already.
        row.pushed_movement_id = latest.get(sku)
        row.matched_at = now
    session.flush()


# ---------------------------------------------------------------------------------------------------------
# Pushing
# ---------------------------------------------------------------------------------------------------------


def _pushable_shop(session: Session, shop_id: int) -> Shop | None:
    """The shop, when it is installed and has our location to hold its stock; else None (nothing to push)."""
    shop = session.get(Shop, shop_id)
    return shop if shop is not None and shop.active and shop.location_id else None


def push_inventory(ctx: Context, shop_id: int, *, sleep: Callable[[float], None] = time.sleep) -> PushResult:
    """Push every shelf of the shop that is owed a push; matches SKUs seen for the first time on the way."""
    result = PushResult()
    with ctx.db.transaction() as session:
        shop = _pushable_shop(session, shop_id)
        if shop is None:
            return result
        client = ctx.store_for(shop)
        location_id = shop.location_id
        levels = session.scalars(
            select(StockLevel).where(StockLevel.shop_id == shop_id, StockLevel.version > StockLevel.pushed_version)
        ).all()
        due = _due(session, shop_id, levels)
        known = store_items(session, shop_id)
        new_skus = [d.sku for d in due if d.sku not in known]
        in_flight = _shipping_now(session, shop_id)
    if not due:
        return result
    if new_skus:
        matches = match_skus(client, location_id, new_skus)
        with ctx.db.transaction() as session:
            _save_matches(session, shop_id, matches, {d.sku: d.movement_id for d in due})
    with ctx.db.transaction() as session:
        rows = store_items(session, shop_id)
        matched = {sku: row for sku, row in rows.items() if row.status == MATCHED}
        floors = {d.sku: matched[d.sku].pushed_movement_id for d in due if d.sku in matched}
        shipped = _shipped_since(session, shop_id, floors, {d.sku: d.movement_id or 0 for d in due})
        entries: list[_Entry] = []
        settled_now: list[_Due] = []
        for d in due:
            row = matched.get(d.sku)
            if row is None:
                settled_now.append(d)  # nothing to push to; the operator sees why on the stock page
                result.not_matched += 1
                continue
            if d.sku in in_flight:
                result.deferred += 1
                continue
            expected = None if row.store_on_hand is None else row.store_on_hand + shipped.get(d.sku, 0)
            entry = _Entry(d, row.inventory_item_id or "", expected)
            if expected == entry.quantity:
                settled_now.append(d)
                result.unchanged += 1
            else:
                entries.append(entry)
        _settle(session, shop_id, [(d, None) for d in settled_now], result)
    _push(ctx, client, shop_id, location_id, entries, result, key_base=None, sleep=sleep)
    return result


def _push(
    ctx: Context,
    client: StoreClient,
    shop_id: int,
    location_id: str,
    entries: list[_Entry],
    result: PushResult,
    *,
    key_base: str | None,
    sleep: Callable[[float], None],
) -> None:
    groups: dict[str, list[_Entry]] = {}
    for entry in entries:
        reason = REPAIR_REASON if key_base else REASONS.get(entry.due.movement_kind or "", REPAIR_REASON)
        groups.setdefault(reason, []).append(entry)
    service = re.sub(r"[^a-z0-9]+", "-", ctx.config.service_name.lower()).strip("-") or "warehouse"
    for reason, group in groups.items():
        for batch in _chunks(sorted(group, key=lambda e: e.due.sku), BATCH):
            done, refused = _send(client, shop_id, location_id, batch, reason, service, key_base, result, sleep)
            with ctx.db.transaction() as session:
                _settle(session, shop_id, done, result)
                if refused:
                    # The store refused for a reason a re-read cannot fix (the item was deleted, or taken off our
                    # location): match these SKUs again in the next round.
                    session.execute(
                        delete(StoreInventoryItem).where(
                            StoreInventoryItem.shop_id == shop_id, StoreInventoryItem.sku.in_(refused)
                        )
                    )


def _key(shop_id: int, movement_id: int, key_base: str | None, batch: Sequence[_Entry]) -> str:
    """The same input under the same key, so the store applies a call whose answer was lost only once."""
    digest = hashlib.sha256(
        json.dumps([(e.item_id, e.quantity, e.change_from) for e in batch], sort_keys=True).encode()
    ).hexdigest()[:16]
    return f"stock-{shop_id}-m{movement_id}{'-' + key_base if key_base else ''}-{digest}"


def _send(
    client: StoreClient,
    shop_id: int,
    location_id: str,
    batch: list[_Entry],
    reason: str,
    service: str,
    key_base: str | None,
    result: PushResult,
    sleep: Callable[[float], None],
) -> tuple[list[tuple[_Due, int | None]], list[str]]:
    """Set the batch's quantities; returns each shelf pushed with the store's figure after, and the SKUs the
    store refused for another reason than a stale figure."""
    movement_id = max((e.due.movement_id or 0) for e in batch)
    uri = f"logistics://{service}/stock-movements/{movement_id}"
    key = _key(shop_id, movement_id, key_base, batch)
    lost = stale_rounds = 0
    done: list[tuple[_Due, int | None]] = []
    while batch:
        quantities = [ops.QuantitySet(e.item_id, location_id, e.quantity, e.change_from) for e in batch]
        try:
            ops.set_inventory_quantities(
                client,
                name=QUANTITY_NAME,
                reason=reason,
                reference_document_uri=uri,
                quantities=quantities,
                idempotency_key=key,
            )
        except StoreUnavailable:
            lost += 1
            result.lost_answers += 1
            if lost > LOST_ANSWER_RETRIES:
                raise  # the task's retry sends the same input again, so the same key
            log.info("inventory.retry shop=%s key=%s attempt=%s", shop_id, key, lost)
            sleep(0.5 * 2 ** (lost - 1))
            continue
        except UserErrors as refused:
            stale_rounds += 1
            codes = {e.code for e in refused.errors}
            if stale_rounds > STALE_RETRIES or not codes <= {
                "CHANGE_FROM_QUANTITY_STALE",
                "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
            }:
                log.warning("inventory.refused shop=%s key=%s errors=%s", shop_id, key, refused)
                return done, [e.due.sku for e in batch]
            result.stale += 1
            # Re-read the store's figures; what already holds our figure is done, the rest goes again from there.
            now_at = _read_on_hand(client, location_id, [e.item_id for e in batch])
            again = []
            for entry in batch:
                there = now_at.get(entry.item_id)
                if there == entry.quantity:
                    done.append((entry.due, there))
                elif there is not None:
                    again.append(replace(entry, change_from=there))
            batch = again
            if "IDEMPOTENCY_KEY_PARAMETER_MISMATCH" in codes and batch:
                # The key was spent on other input (a retry after a re-read): this input gets its own.
                key = _key(shop_id, movement_id, f"{key_base or ''}r{stale_rounds}", batch)
            continue
        result.mutations += 1
        done.extend((e.due, e.quantity) for e in batch)
        log.info(
            "inventory.pushed shop=%s items=%s key=%s reason=%s lost_answers=%s stale=%s",
            shop_id,
            len(batch),
            key,
            reason,
            lost,
            stale_rounds,
        )
        break
    return done, []


def _read_on_hand(client: StoreClient, location_id: str, item_ids: Sequence[str]) -> dict[str, int | None]:
    figures: dict[str, int | None] = {}
    for chunk in _chunks(list(item_ids), ops.INVENTORY_PAGE):
        query = " OR ".join(f"id:{item_id.rsplit('/', 1)[-1]}" for item_id in chunk)
        for item in ops.inventory_items_at(client, query, location_id):
            figures[item.id] = item.on_hand
    return figures


def _settle(session: Session, shop_id: int, done: Sequence[tuple[_Due, int | None]], result: PushResult) -> None:
    """Record what the store now holds, and that each shelf is pushed up to the version read (a shelf changed since
    stays owed)."""
    now = _now()
    rows = store_items(session, shop_id) if any(figure is not None for _, figure in done) else {}
    for due, figure in done:
        if figure is not None and (row := rows.get(due.sku)) is not None:
            row.store_on_hand = figure
            row.pushed_movement_id = max(row.pushed_movement_id or 0, due.movement_id or 0) or None
            row.pushed_at = now
            result.pushed += 1
        session.execute(
            update(StockLevel)
            .where(StockLevel.id == due.level_id, StockLevel.pushed_version < due.version)
            .values(
                pushed_version=due.version,
                push_due_since=case((StockLevel.version <= due.version, None), else_=StockLevel.push_due_since),
            )
        )
        if due.due_since is not None:
            waited = max(0.0, (now - due.due_since).total_seconds())
            result.staleness_s.append(waited)
            result.max_staleness_s = max(result.max_staleness_s, waited)
    session.flush()


# ---------------------------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------------------------


def reconcile(ctx: Context, shop_id: int, *, sleep: Callable[[float], None] = time.sleep) -> ReconcileResult:
    """Compare the store's `on_hand` at our location with our shelves and set right what drifted (a merchant's
    edit, a fulfillment cancelled on the store); SKUs not matched before are looked up again."""
    result = ReconcileResult()
    with ctx.db.transaction() as session:
        shop = _pushable_shop(session, shop_id)
        if shop is None:
            return result
        client = ctx.store_for(shop)
        location_id = shop.location_id
        rows = store_items(session, shop_id)
        all_skus = list(session.scalars(select(StockLevel.sku).where(StockLevel.shop_id == shop_id)).all())
        latest = {sku: m for sku, (m, _) in _latest_movements(session, shop_id, all_skus).items()}
    unmatched = [sku for sku in all_skus if sku not in rows or rows[sku].status != MATCHED]
    if unmatched:
        matches = match_skus(client, location_id, unmatched)
        with ctx.db.transaction() as session:
            _save_matches(session, shop_id, matches, latest)
            newly = [sku for sku, (status, _) in matches.items() if status == MATCHED]
            if newly:
                # Found at last: push our figure at once.
                session.execute(
                    update(StockLevel)
                    .where(StockLevel.shop_id == shop_id, StockLevel.sku.in_(newly))
                    .values(pushed_version=0, push_due_since=func.coalesce(StockLevel.push_due_since, utcnow()))
                )
    read_at = int(time.time() * 1000)
    at_store = {item.id: item.on_hand for item in ops.location_inventory(client, location_id)}
    entries: list[_Entry] = []
    with ctx.db.transaction() as session:
        rows = store_items(session, shop_id)
        in_flight = _shipping_now(session, shop_id)
        levels = session.scalars(
            select(StockLevel).where(StockLevel.shop_id == shop_id, StockLevel.version <= StockLevel.pushed_version)
        ).all()
        due = {d.sku: d for d in _due(session, shop_id, levels)}
        for sku, d in due.items():
            row = rows.get(sku)
            if row is None or row.status != MATCHED or sku in in_flight:
                continue
            result.checked += 1
            there = at_store.get(row.inventory_item_id or "")
            if there is None:
                row.status = NOT_STOCKED  # taken off our location on the store
                log.info("inventory.match shop=%s sku=%s status=%s", shop_id, sku, NOT_STOCKED)
                continue
            row.store_on_hand = there
            row.pushed_movement_id = d.movement_id
            if there != max(0, d.on_hand):
                result.drifted += 1
                log.info("inventory.drift shop=%s sku=%s store=%s ours=%s", shop_id, sku, there, d.on_hand)
                entries.append(_Entry(replace(d, due_since=None), row.inventory_item_id or "", there))
    if entries:
        _push(ctx, client, shop_id, location_id, entries, result.repaired, key_base=f"repair{read_at}", sleep=sleep)
    return result


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]
