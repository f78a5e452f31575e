"""Stock in and out per shop: counts, receipts, adjustments, and CSV count sheets with their dry run."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from fulfillment import stock
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem, Shop, StockMovement
from fulfillment.operator.forms import InvalidInput

OPERATOR = "ada@warehouse.example"
A, B = "a-shop.myshopify.com", "b-shop.myshopify.com"


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    with context.db.transaction() as session:
        session.add_all([Shop(id=1, domain=A, settings={}), Shop(id=2, domain=B, settings={})])
    yield context
    context.db.dispose()


def shelves(ctx, shop_id: int) -> dict[str, int]:
    return {row.sku: row.on_hand for row in stock.levels(ctx, shop_id)}


def kinds(ctx) -> list[tuple[int, str, str, int, str]]:
    with ctx.db.transaction() as session:
        return [
            (m.shop_id, m.sku, m.kind, m.on_hand_change, m.note)
            for m in session.scalars(select(StockMovement).order_by(StockMovement.id))
        ]


# --- which shop -------------------------------------------------------------------------------------------


def test_a_shop_is_named_by_id_or_domain(ctx):
    stock.count(ctx, 1, "MUG", 4, OPERATOR)
    stock.count(ctx, B.upper(), "MUG", 9, OPERATOR)
    stock.count(ctx, " 2 ", "CAP", 1, OPERATOR)
    assert shelves(ctx, 1) == {"MUG": 4}
    assert shelves(ctx, 2) == {"CAP": 1, "MUG": 9}


@pytest.mark.parametrize("shop", [None, "", "3", "nope.myshopify.com", "not a domain", "9" * 30, "\u00b2", "-1"])
def test_with_several_shops_an_unknown_or_missing_shop_is_refused(ctx, shop):
    with pytest.raises(InvalidInput, match="choose a shop|no shop"):
        stock.count(ctx, shop, "MUG", 4, OPERATOR)
    assert kinds(ctx) == []


def test_with_one_shop_it_need_not_be_named(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    with context.db.transaction() as session:
        session.add(Shop(id=7, domain=A, settings={}))
    stock.receive(context, None, "MUG", "3", OPERATOR)
    assert shelves(context, 7) == {"MUG": 3}
    context.db.dispose()


# --- counts, receipts, adjustments ------------------------------------------------------------------------


def test_receipts_add_and_adjustments_correct_with_a_reason(ctx):
    stock.count(ctx, 1, "MUG", "10", OPERATOR)
    assert stock.receive(ctx, 1, "MUG", "5", OPERATOR, "delivery note 7").summary == "MUG: 5 received, 15 on hand."
    assert stock.adjust(ctx, 1, "MUG", "-3", "three broken", OPERATOR).summary == "MUG: adjusted by -3, 12 on hand."
    assert shelves(ctx, 1) == {"MUG": 12}
    assert shelves(ctx, 2) == {}
    assert kinds(ctx) == [
        (1, "MUG", "cycle_count", 10, ""),
        (1, "MUG", "receipt", 5, "delivery note 7"),
        (1, "MUG", "adjustment", -3, "three broken"),
    ]


@pytest.mark.parametrize("units", ["0", "-2", "1.5", "", "ten", str(stock.MAX_UNITS + 1)])
def test_a_receipt_is_a_whole_number_of_units_from_one(ctx, units):
    with pytest.raises(InvalidInput, match="units received"):
        stock.receive(ctx, 1, "MUG", units, OPERATOR)


def test_an_adjustment_needs_a_reason_and_cannot_empty_a_shelf_below_zero(ctx):
    stock.count(ctx, 1, "MUG", 2, OPERATOR)
    with pytest.raises(InvalidInput) as raised:
        stock.adjust(ctx, 1, "MUG", "0", " ", OPERATOR)
    assert len(raised.value.problems) == 2
    with pytest.raises(InvalidInput, match="2 on hand, cannot take 3 away"):
        stock.adjust(ctx, 1, "MUG", "-3", "lost", OPERATOR)
    assert shelves(ctx, 1) == {"MUG": 2}


def test_the_stock_page_lists_each_shops_shelves_apart(ctx):
    stock.count(ctx, 1, "TEE", 5, OPERATOR)
    stock.count(ctx, 2, "TEE", 1, OPERATOR)
    rows = [(r.shop_domain, r.sku, r.on_hand, r.available) for r in stock.levels(ctx)]
    assert rows == [(A, "TEE", 5, 5), (B, "TEE", 1, 1)]
    assert [(m.shop_domain, m.kind, m.on_hand_change) for m in stock.movements(ctx, 2)] == [(B, "cycle_count", 1)]


def test_a_movement_for_an_order_names_the_order(ctx):
    stock.count(ctx, 1, "MUG", 5, OPERATOR)
    with ctx.db.transaction() as session:
        record = FulfillmentOrder(shop_id=1, store_id="FO/1", order_id="O/1", order_name="#1001", state="accepted")
        record.line_items = [
            FulfillmentOrderLineItem(
                store_id="LI/1", line_item_id="OLI/1", sku="MUG", total_quantity=2, remaining_quantity=2
            )
        ]
        session.add(record)
        session.flush()
        ctx.warehouse(session).reserve(record)
        record_id = record.id
    latest, counted = stock.movements(ctx, 1)
    assert (latest.kind, latest.reserved_change, latest.available_after) == ("reservation", 2, 3)
    assert (latest.record_id, latest.order_name) == (record_id, "#1001")
    assert (counted.record_id, counted.actor) == (None, OPERATOR)


# --- CSV ----------------------------------------------------------------------------------------------------


def test_a_dry_run_says_what_would_change_and_changes_nothing(ctx):
    stock.count(ctx, 1, "MUG", 10, OPERATOR)
    stock.count(ctx, 1, "CAP", 3, OPERATOR)
    sheet = "sku,on_hand\nMUG,12\nCAP,3\nNEW-SKU,4\n"

    report = stock.import_csv(ctx, 1, sheet, dry_run=True, actor=OPERATOR)

    assert report.ok and not report.applied
    assert [(c.line, c.sku, c.before, c.after, c.change) for c in report.changes] == [
        (2, "MUG", 10, 12, 2),
        (4, "NEW-SKU", None, 4, 4),
    ]
    assert report.unchanged == 1
    assert report.summary() == "2 SKU(s) would change, 1 unchanged."
    assert shelves(ctx, 1) == {"CAP": 3, "MUG": 10}


def test_an_import_counts_the_shelves_of_its_shop_only(ctx):
    stock.count(ctx, 2, "MUG", 50, OPERATOR)

    report = stock.import_csv(ctx, A, b"sku,on_hand\nMUG,12\n", dry_run=False, actor=OPERATOR)

    assert report.applied and report.summary() == "1 SKU(s) changed, 0 unchanged."
    assert shelves(ctx, 1) == {"MUG": 12}
    assert shelves(ctx, 2) == {"MUG": 50}
    assert kinds(ctx)[-1] == (1, "MUG", "cycle_count", 12, "CSV import, line 2")


def test_a_file_with_one_bad_line_changes_nothing_and_names_the_line(ctx):
    stock.count(ctx, 1, "MUG", 10, OPERATOR)
    sheet = "sku,on_hand\nMUG,12\nCAP,three\nTEE,4\n"

    for dry_run in (True, False):
        report = stock.import_csv(ctx, 1, sheet, dry_run=dry_run, actor=OPERATOR)
        assert not report.ok and not report.applied and report.changes == []
        assert [str(e) for e in report.errors] == [
            "line 3: on_hand must be a whole number from 0 to 10000000, not 'three'"
        ]

    assert shelves(ctx, 1) == {"MUG": 10}
    assert len(kinds(ctx)) == 1


def test_every_bad_line_is_reported_by_its_number_in_the_file(ctx):
    long_sku = "X" * 256
    sheet = f"SKU;On_Hand;note\n;1;x\n\nMUG;-1\nMUG;2\nMUG;3\n{long_sku};1\n"
    report = stock.import_csv(ctx, 1, sheet, dry_run=True, actor=OPERATOR)
    assert [(e.line, e.message.split(" (")[0].split(",")[0]) for e in report.errors] == [
        (2, "a SKU has 1 to 255 characters"),
        (4, "on_hand must be a whole number from 0 to 10000000"),
        (6, "MUG is on line 5 already"),
        (7, "a SKU has 1 to 255 characters"),
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"sku,units\nMUG,1\n", "line 1: the header needs the columns sku and on_hand (missing on_hand)"),
        (b"", "line 1: the header needs the columns sku and on_hand (missing sku, on_hand)"),
        (b"sku,on_hand\n", "the file has no lines to import"),
        (b"sku,on_hand\nMUG,1\nCAF\xe9,2\n", "line 3: not UTF-8 text (save the sheet as CSV UTF-8)"),
        (b'sku,on_hand\nMUG,1\n"CAP,2\n', "line 3: not readable as CSV (unexpected end of data)"),
    ],
)
def test_a_file_that_is_no_count_sheet_is_refused_with_a_reason(ctx, data, message):
    report = stock.import_csv(ctx, 1, data, dry_run=False, actor=OPERATOR)
    assert not report.ok and not report.applied
    assert str(report.errors[0]).startswith(message), report.errors
    assert kinds(ctx) == []


def test_an_exported_sheet_imports_back_unchanged(ctx):
    stock.count(ctx, 1, "MUG", 10, OPERATOR)
    stock.count(ctx, 1, 'CAP "big", red', 3, OPERATOR)
    stock.count(ctx, 2, "OTHER", 1, OPERATOR)

    sheet = stock.export_csv(ctx, 1)

    assert sheet.splitlines() == ["sku,on_hand,reserved,available", '"CAP ""big"", red",3,0,3', "MUG,10,0,10"]
    report = stock.import_csv(ctx, 1, "\ufeff" + sheet, dry_run=False, actor=OPERATOR)
    assert report.ok and report.changes == [] and report.unchanged == 2


def test_an_import_for_an_unknown_shop_changes_nothing(ctx):
    report = stock.import_csv(ctx, "9", "sku,on_hand\nMUG,1\n", dry_run=False, actor=OPERATOR)
    assert [str(e) for e in report.errors] == ["no shop '9'"]
    assert kinds(ctx) == []
