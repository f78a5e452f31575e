"""`flask --app app ...` commands for operators: connect a shop directly, stock in and out per shop, migrate."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click
from flask import Flask

from app.deps import ctx
from fulfillment import install, operators, shops, stock
from fulfillment.context import ShopNotConnected
from fulfillment.migrate import upgrade
from fulfillment.operator.actions import Done
from fulfillment.operator.forms import InvalidInput
from fulfillment.shop_domain import InvalidShopDomain
from fulfillment.store.errors import StoreError

CLI_ACTOR = "command line"


def register(app: Flask) -> None:
    @app.cli.command("migrate")
    def migrate_command() -> None:
        """Bring the database to the newest schema."""
        upgrade(ctx().config.database_url)
        click.echo("database at head")

    @app.cli.command("connect-shop")
    @click.option("--domain", required=True)
    @click.option("--token", required=True, envvar="SHOP_ACCESS_TOKEN")
    @click.option("--scopes", default="")
    def connect_shop_command(domain: str, token: str, scopes: str) -> None:
        """Register a shop with an access token obtained outside the install flow."""
        try:
            shop_id = shops.connect_shop(ctx(), domain, token, scopes)
        except InvalidShopDomain as exc:
            raise click.ClickException(f"{domain!r} is not a myshopify.com domain; nothing was changed") from exc
        except (StoreError, ShopNotConnected) as exc:
            raise click.ClickException(f"could not connect {domain}: {exc}; nothing was changed") from exc
        click.echo(f"shop {domain} connected (id {shop_id})")

    shop_option = click.option(
        "--shop", help="The shop's domain or id (stock is kept per shop); may be left out when there is one shop."
    )

    def stock_done(action: Callable[[], Done]) -> None:
        try:
            click.echo(action().summary)
        except InvalidInput as exc:
            raise click.ClickException("; ".join(exc.problems)) from exc

    @app.cli.command("set-stock")
    @click.argument("sku")
    @click.argument("on_hand", type=int)
    @shop_option
    def set_stock_command(sku: str, on_hand: int, shop: str | None) -> None:
        """Count a shelf: set a shop's units on hand of a SKU."""
        stock_done(lambda: stock.count(ctx(), shop, sku, on_hand, CLI_ACTOR))

    @app.cli.command("receive-stock")
    @click.argument("sku")
    @click.argument("units", type=int)
    @shop_option
    @click.option("--note", default="", help="The delivery note or anything else worth keeping with the receipt.")
    def receive_stock_command(sku: str, units: int, shop: str | None, note: str) -> None:
        """Goods came in: add units to a shop's shelf of a SKU."""
        stock_done(lambda: stock.receive(ctx(), shop, sku, units, CLI_ACTOR, note))

    # A negative change reads as an option unless unknown options are left to the arguments.
    @app.cli.command("adjust-stock", context_settings={"ignore_unknown_options": True})
    @click.argument("sku")
    @click.argument("change", type=int)
    @shop_option
    @click.option("--note", required=True, help="Why (found, damaged, lost): an adjustment needs a reason.")
    def adjust_stock_command(sku: str, change: int, shop: str | None, note: str) -> None:
        """Correct a shop's shelf of a SKU by a number of units (negative to take units away)."""
        stock_done(lambda: stock.adjust(ctx(), shop, sku, change, note, CLI_ACTOR))

    @app.cli.command("import-stock")
    @click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @shop_option
    @click.option("--dry-run", is_flag=True, help="Only show what would change.")
    def import_stock_command(path: Path, shop: str | None, dry_run: bool) -> None:
        """Count shelves from a CSV count sheet (sku,on_hand); any bad line and nothing changes."""
        report = stock.import_csv(ctx(), shop, path.read_bytes(), dry_run=dry_run, actor=CLI_ACTOR)
        lines = stock.report_lines(report)
        if not report.ok:
            raise click.ClickException("\n".join(lines))
        click.echo("\n".join(lines))

    @app.cli.command("export-stock")
    @shop_option
    @click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="A file; the terminal if left out.")
    def export_stock_command(shop: str | None, output: Path | None) -> None:
        """A shop's stock as a CSV count sheet (sku,on_hand,reserved,available)."""
        try:
            text = stock.export_csv(ctx(), shop)
        except InvalidInput as exc:
            raise click.ClickException("; ".join(exc.problems)) from exc
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text, encoding="utf-8")

    @app.cli.command("create-operator")
    @click.option("--email", required=True, help="The operator's email, used to sign in to the dashboard.")
    @click.option(
        "--password",
        envvar="OPERATOR_PASSWORD",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="Prompted (twice) when neither given nor in OPERATOR_PASSWORD.",
    )
    def create_operator_command(email: str, password: str) -> None:
        """Create a dashboard account for a warehouse operator."""
        try:
            operator_id = operators.create_operator(ctx(), email, password)
        except operators.OperatorError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"operator {operators.normalize_email(email)} created (id {operator_id})")

    @app.cli.command("rotate-token-key")
    def rotate_token_key_command() -> None:
        """Re-encrypt every stored access token with the first key of TOKEN_ENCRYPTION_KEY.

        Put the new key first, keep the old ones after it, run this, then the old keys can be dropped.
        """
        try:
            count = install.rotate_token_key(ctx())
        except ValueError as exc:
            raise click.ClickException(f"{exc}; nothing was changed") from exc
        click.echo(f"{count} access tokens re-encrypted with the first key")
