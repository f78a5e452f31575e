"""The stock commands (`flask --app app set-stock ...`): thin over `fulfillment.stock`, per shop."""

from __future__ import annotations

import pytest

from app import create_app
from fulfillment import stock
from fulfillment.config import Config
from fulfillment.models import Shop

A, B = "a-shop.myshopify.com", "b-shop.myshopify.com"


@pytest.fixture
def app(sqlite_url):
    app = create_app(Config(database_url=sqlite_url))
    context = app.extensions["fulfillment"]
    with context.db.transaction() as session:
        session.add_all([Shop(id=1, domain=A, settings={}), Shop(id=2, domain=B, settings={})])
    yield app
    context.db.dispose()


def run(app, *args: str):
    return app.test_cli_runner().invoke(args=list(args))


def shelves(app, shop_id: int) -> dict[str, int]:
    return {row.sku: row.on_hand for row in stock.levels(app.extensions["fulfillment"], shop_id)}


def test_set_receive_and_adjust_take_the_shop(app):
    assert run(app, "set-stock", "MUG", "10", "--shop", A).output == "MUG: 10 on hand.\n"
    assert run(app, "receive-stock", "MUG", "5", "--shop", "1", "--note", "delivery 7").exit_code == 0
    adjusted = run(app, "adjust-stock", "MUG", "-2", "--shop", A, "--note", "two broken")
    assert adjusted.output == "MUG: adjusted by -2, 13 on hand.\n"
    assert run(app, "set-stock", "MUG", "1", "--shop", B).exit_code == 0
    assert (shelves(app, 1), shelves(app, 2)) == ({"MUG": 13}, {"MUG": 1})


def test_without_a_shop_among_several_nothing_changes(app):
    result = run(app, "set-stock", "MUG", "10")
    assert result.exit_code != 0 and "choose a shop" in result.output
    assert shelves(app, 1) == {}


def test_import_with_a_bad_line_fails_naming_it_and_export_lists_the_shop(app, tmp_path):
    sheet = tmp_path / "count.csv"
    sheet.write_text("sku,on_hand\nMUG,4\nCAP,-1\n")
    failed = run(app, "import-stock", str(sheet), "--shop", A)
    assert failed.exit_code != 0 and "line 3: on_hand must be a whole number" in failed.output
    assert shelves(app, 1) == {}

    sheet.write_text("sku,on_hand\nMUG,4\n")
    preview = run(app, "import-stock", str(sheet), "--shop", A, "--dry-run")
    assert preview.output == "line 2: MUG new -> 4 (+4)\n1 SKU(s) would change, 0 unchanged.\n"
    assert shelves(app, 1) == {}
    assert run(app, "import-stock", str(sheet), "--shop", A).exit_code == 0
    assert run(app, "export-stock", "--shop", A).output == "sku,on_hand,reserved,available\nMUG,4,0,4\n"
    assert run(app, "export-stock", "--shop", B).output == "sku,on_hand,reserved,available\n"
