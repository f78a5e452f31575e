"""`flask --app app ...` commands for operators: connect a shop directly, set stock, migrate."""

from __future__ import annotations

import click
from flask import Flask

from app.deps import ctx
from fulfillment import install, operators, shops
from fulfillment.context import ShopNotConnected
from fulfillment.migrate import upgrade
from fulfillment.shop_domain import InvalidShopDomain
from fulfillment.store import StoreError


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

    @app.cli.command("set-stock")
    @click.argument("sku")
    @click.argument("on_hand", type=int)
    def set_stock_command(sku: str, on_hand: int) -> None:
        """Set the simulated warehouse's units on hand for a SKU."""
        with ctx().db.transaction() as session:
            ctx().warehouse(session).set_stock(sku, on_hand)
        click.echo(f"{sku}: {on_hand} on hand")

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
