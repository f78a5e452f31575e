"""The store's deliveries (callbacks, webhooks) are kept for de-duplication only through its retry window."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from fulfillment import delivery
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import Delivery

NOW = datetime(2026, 7, 10, 12, 0, tzinfo=UTC)


def test_deliveries_older_than_the_retry_window_are_pruned_and_younger_ones_still_dedupe(sqlite_url, monkeypatch):
    ctx = Context.from_config(Config(database_url=sqlite_url))
    monkeypatch.setattr(delivery, "PRUNE_BATCH", 2)  # several batches
    ages = {"a": 72, "b": 50, "c": 49.5, "d": 47, "e": 1}  # hours
    with ctx.db.transaction() as session:
        for key, hours in ages.items():
            session.add(
                Delivery(
                    shop_domain="a-shop.myshopify.com",
                    source="webhook",
                    delivery_key=key,
                    topic="fulfillment_orders/cancelled",
                    received_at=NOW - timedelta(hours=hours),
                )
            )
    assert delivery.RETRY_WINDOW.total_seconds() == 48 * 3600
    assert delivery.prune_deliveries(ctx, NOW) == 3
    with ctx.db.transaction() as session:
        assert sorted(session.scalars(select(Delivery.delivery_key))) == ["d", "e"]
    assert delivery.prune_deliveries(ctx, NOW) == 0
    ctx.db.dispose()
