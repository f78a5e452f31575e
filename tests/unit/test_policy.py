"""The decision policy on in-memory fulfillment orders: accept with a ship date, or reject with the store's reason."""

from datetime import UTC, datetime, timedelta

import pytest

from fulfillment.models import FulfillmentOrder, FulfillmentOrderLineItem
from fulfillment.policy import Rules, decide

NOW = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
ADDRESS = {"address1": "1 Quay Street", "city": "Dublin", "country_code": "IE", "zip": "D01"}


def line(store_id: str, sku: str | None, remaining: int, total: int | None = None) -> FulfillmentOrderLineItem:
    return FulfillmentOrderLineItem(
        store_id=store_id,
        line_item_id=f"gid://shopify/LineItem/{store_id}",
        sku=sku,
        total_quantity=remaining if total is None else total,
        remaining_quantity=remaining,
    )


def order(*lines: FulfillmentOrderLineItem, destination: dict | None = ADDRESS) -> FulfillmentOrder:
    return FulfillmentOrder(
        store_id="gid://shopify/FulfillmentOrder/1",
        order_id="gid://shopify/Order/1",
        destination=None if destination is None else dict(destination),
        line_items=list(lines),
    )


def test_accepts_with_expected_ship_date_from_handling_days():
    record = order(line("L1", "MUG-1", 2), line("L2", "TEE-M", 1))
    decision = decide(record, {"MUG-1": 2, "TEE-M": 5}, Rules(handling_days=2, service_name="Acme 3PL"), NOW)

    assert decision.accept
    assert decision.reason is None
    assert decision.line_item_messages == ()
    assert decision.estimated_shipped_at == NOW + timedelta(days=2)
    assert "Acme 3PL" in decision.message
    assert "2026-03-04" in decision.message


def test_fractional_handling_days_give_hours():
    decision = decide(order(line("L1", "MUG-1", 1)), {"MUG-1": 1}, Rules(handling_days=0.5), NOW)
    assert decision.estimated_shipped_at == NOW + timedelta(hours=12)


@pytest.mark.parametrize("missing", ["address1", "city", "country_code"])
@pytest.mark.parametrize("how", ["absent", "empty"])
def test_rejects_incorrect_address_when_a_field_is_missing(missing, how):
    destination = dict(ADDRESS)
    if how == "absent":
        del destination[missing]
    else:
        destination[missing] = ""
    decision = decide(order(line("L1", "MUG-1", 1), destination=destination), {"MUG-1": 9}, Rules(), NOW)

    assert not decision.accept
    assert decision.reason == "INCORRECT_ADDRESS"
    assert missing in decision.message
    assert decision.estimated_shipped_at is None


def test_no_destination_at_all_names_every_missing_field():
    decision = decide(order(line("L1", "MUG-1", 1), destination=None), {"MUG-1": 9}, Rules(), NOW)
    assert decision.reason == "INCORRECT_ADDRESS"
    for name in ("address1", "city", "country_code"):
        assert name in decision.message


def test_address_is_checked_before_stock():
    decision = decide(order(line("L1", "MUG-1", 5), destination={"city": "Dublin"}), {}, Rules(), NOW)
    assert decision.reason == "INCORRECT_ADDRESS"


def test_rejects_undeliverable_destination_for_a_blocked_country():
    destination = {**ADDRESS, "country_code": "kp"}
    rules = Rules(blocked_countries=frozenset({"KP"}))
    decision = decide(order(line("L1", "MUG-1", 1), destination=destination), {"MUG-1": 9}, rules, NOW)

    assert not decision.accept
    assert decision.reason == "UNDELIVERABLE_DESTINATION"
    assert "KP" in decision.message


def test_country_not_blocked_is_accepted():
    rules = Rules(blocked_countries=frozenset({"KP"}))
    assert decide(order(line("L1", "MUG-1", 1)), {"MUG-1": 1}, rules, NOW).accept


def test_rejects_ineligible_product_naming_each_offending_line():
    record = order(line("L1", "MUG-1", 1), line("L2", "BATTERY-LI", 2), line("L3", None, 1))
    rules = Rules(ineligible_skus=frozenset({"BATTERY-LI"}))
    decision = decide(record, {"MUG-1": 9, "BATTERY-LI": 9}, rules, NOW)

    assert not decision.accept
    assert decision.reason == "INELIGIBLE_PRODUCT"
    messages = dict(decision.line_item_messages)
    assert set(messages) == {"L2", "L3"}
    assert "BATTERY-LI" in messages["L2"]
    assert "no SKU" in messages["L3"]


def test_ineligible_line_with_nothing_left_to_ship_does_not_block():
    record = order(line("L1", "MUG-1", 1), line("L2", "BATTERY-LI", 0, total=2))
    rules = Rules(ineligible_skus=frozenset({"BATTERY-LI"}))
    assert decide(record, {"MUG-1": 1}, rules, NOW).accept


def test_rejects_out_of_stock_with_a_message_per_short_line_naming_the_sku():
    record = order(line("L1", "MUG-1", 2), line("L2", "TEE-M", 3), line("L3", "CAP", 1))
    decision = decide(record, {"MUG-1": 5, "TEE-M": 1}, Rules(), NOW)

    assert not decision.accept
    assert decision.reason == "INVENTORY_OUT_OF_STOCK"
    assert dict(decision.line_item_messages) == {
        "L2": "TEE-M: 1 in stock, 3 needed.",
        "L3": "CAP: 0 in stock, 1 needed.",
    }


def test_lines_sharing_a_sku_are_added_up_against_stock():
    record = order(line("L1", "MUG-1", 3), line("L2", "MUG-1", 3))
    decision = decide(record, {"MUG-1": 5}, Rules(), NOW)

    assert decision.reason == "INVENTORY_OUT_OF_STOCK"
    assert dict(decision.line_item_messages) == {
        "L1": "MUG-1: 5 in stock, 6 needed.",
        "L2": "MUG-1: 5 in stock, 6 needed.",
    }


def test_oversold_stock_is_reported_as_none_in_stock():
    decision = decide(order(line("L1", "MUG-1", 1)), {"MUG-1": -3}, Rules(), NOW)
    assert dict(decision.line_item_messages) == {"L1": "MUG-1: 0 in stock, 1 needed."}


def test_exact_stock_is_enough():
    assert decide(order(line("L1", "MUG-1", 4)), {"MUG-1": 4}, Rules(), NOW).accept


def test_rules_from_empty_settings_are_the_defaults_given():
    rules = Rules.from_settings({}, handling_days=3, service_name="Acme 3PL")
    assert rules == Rules(handling_days=3.0, service_name="Acme 3PL")


def test_rules_from_settings_override_defaults_and_normalise():
    settings = {
        "handling_days": "2.5",
        "blocked_countries": ["kp", "Ir"],
        "ineligible_skus": ["BATTERY-LI", "BATTERY-LI"],
        "service_name": "not settable per shop",
    }
    rules = Rules.from_settings(settings, handling_days=1, service_name="Acme 3PL")

    assert rules.handling_days == 2.5
    assert rules.blocked_countries == frozenset({"KP", "IR"})
    assert rules.ineligible_skus == frozenset({"BATTERY-LI"})
    assert rules.service_name == "Acme 3PL"


def test_rules_from_settings_feed_the_decision():
    rules = Rules.from_settings({"blocked_countries": ["ie"]})
    decision = decide(order(line("L1", "MUG-1", 1)), {"MUG-1": 1}, rules, NOW)
    assert decision.reason == "UNDELIVERABLE_DESTINATION"
