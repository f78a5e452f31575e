"""What an operator types into the dashboard, checked by the core: packages, rejections, stock, shop settings."""

import pytest
from werkzeug.datastructures import MultiDict

from fulfillment.operator.forms import (
    REJECTION_REASONS,
    InvalidInput,
    parse_settings,
    validate_packages,
    validate_rejection,
)
from fulfillment.stock import parse_stock

REMAINING = {11: 3, 12: 1}  # our line item id -> units left to ship
LABELS = {11: "SKU-MUG", 12: "SKU-TEE"}


def problems(excinfo) -> str:
    return " | ".join(excinfo.value.problems)


# --- packages -----------------------------------------------------------------------------------------------


def test_two_packages_covering_every_remaining_unit_are_accepted_and_trimmed():
    packages, numbers, carrier = validate_packages(
        REMAINING, [[(11, 2), (12, 0)], [(11, 1), (12, 1)]], [" TRACK-1 ", "TRACK-2"], " PostNord "
    )
    assert packages == [[(11, 2)], [(11, 1), (12, 1)]]
    assert numbers == ["TRACK-1", "TRACK-2"]
    assert carrier == "PostNord"


def test_the_same_line_twice_in_one_package_counts_once_with_both_quantities():
    packages, _, _ = validate_packages(REMAINING, [[(11, 1), (11, 2), (12, 1)]], ["T1"], "DHL")
    assert packages == [[(11, 3), (12, 1)]]


def test_packing_more_than_remains_is_refused_naming_the_item():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [[(11, 3), (12, 1)], [(11, 1)]], ["T1", "T2"], "DHL", LABELS)
    assert "SKU-MUG: 4 packed but only 3 left to ship" in problems(excinfo)


def test_leaving_units_unpacked_is_refused_because_they_would_never_ship():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [[(11, 3)]], ["T1"], "DHL", LABELS)
    assert "SKU-TEE: 1 unit(s) not packed" in problems(excinfo)


def test_every_package_needs_contents_and_its_own_tracking_number():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [[(11, 3), (12, 1)], [(11, 0)], [(12, 0)]], ["T1", "T1", " "], "DHL")
    text = problems(excinfo)
    assert "package 2 is empty" in text and "package 3 is empty" in text
    assert "package 3 needs a tracking number" in text
    assert "T1 repeated" in text


def test_tracking_numbers_must_match_the_packages_one_for_one():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [[(11, 3), (12, 1)]], ["T1", "T2"], "DHL")
    assert "1 package(s) need 1 tracking number(s), got 2" in problems(excinfo)


def test_foreign_lines_negative_quantities_and_a_missing_carrier_are_refused():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [[(11, 3), (12, 1), (99, 1), (12, -1)]], ["T1"], "  ")
    text = problems(excinfo)
    assert "line item 99 is not on this fulfillment order" in text
    assert "cannot be negative" in text
    assert "name the carrier" in text


def test_no_packages_at_all_is_refused():
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages(REMAINING, [], [], "DHL")
    assert "pack at least one package" in problems(excinfo)


# --- rejections ---------------------------------------------------------------------------------------------


def test_a_rejection_keeps_the_store_reason_and_only_the_line_messages_given():
    reason, message, lines = validate_rejection(
        "INVENTORY_OUT_OF_STOCK", "  Out of mugs.  ", [("gid://LI/1", "none left"), ("gid://LI/2", "   ")]
    )
    assert (reason, message, lines) == ("INVENTORY_OUT_OF_STOCK", "Out of mugs.", (("gid://LI/1", "none left"),))


def test_a_rejection_needs_a_known_reason_and_a_message():
    with pytest.raises(InvalidInput) as excinfo:
        validate_rejection("BECAUSE", "", [])
    text = problems(excinfo)
    assert "unknown rejection reason 'BECAUSE'" in text
    assert "say why" in text


def test_the_reasons_offered_are_the_stores_own_enum_values():
    assert "OTHER" in REJECTION_REASONS and "INVENTORY_OUT_OF_STOCK" in REJECTION_REASONS
    assert all(value == value.upper() for value in REJECTION_REASONS)


# --- stock --------------------------------------------------------------------------------------------------


def test_stock_is_a_sku_and_a_whole_number_from_zero():
    assert parse_stock(" SKU-MUG ", "12") == ("SKU-MUG", 12)
    assert parse_stock("SKU-MUG", 0) == ("SKU-MUG", 0)
    for sku, units in [("", "1"), ("SKU", "-1"), ("SKU", "1.5"), ("SKU", "many"), ("x" * 256, "1")]:
        with pytest.raises(InvalidInput):
            parse_stock(sku, units)


# --- shop settings ------------------------------------------------------------------------------------------


def test_the_settings_form_is_parsed_into_typed_settings():
    form = MultiDict(
        [
            ("review_requests", "0"),
            ("review_requests", "1"),
            ("review_cancellations", "0"),
            ("handling_days", "2.5"),
            ("carrier", " PostNord "),
            ("blocked_countries", "ru\nBY, kp"),
            ("ineligible_skus", "SKU-BATTERY\nSKU-KNIFE\nSKU-BATTERY"),
        ]
    )
    assert parse_settings(form) == {
        "review_requests": True,
        "review_cancellations": False,
        "handling_days": 2.5,
        "carrier": "PostNord",
        "blocked_countries": ["RU", "BY", "KP"],
        "ineligible_skus": ["SKU-BATTERY", "SKU-KNIFE"],
    }


def test_an_unchecked_box_turns_the_setting_off():
    form = MultiDict([("review_requests", "0")])
    assert parse_settings(form, {"review_requests": True})["review_requests"] is False


def test_fields_left_out_keep_their_value_and_other_settings_survive():
    current = {"handling_days": 3.0, "pick_delay_s": 5, "blocked_countries": ["RU"]}
    assert parse_settings({"review_requests": True}, current) == {**current, "review_requests": True}


def test_empty_fields_fall_back_to_the_warehouse_defaults():
    settings = parse_settings(
        MultiDict([("handling_days", ""), ("carrier", ""), ("blocked_countries", ""), ("ineligible_skus", "")]),
        {"handling_days": 3.0, "carrier": "DHL", "blocked_countries": ["RU"], "ineligible_skus": ["X"]},
    )
    assert settings == {"blocked_countries": [], "ineligible_skus": []}


def test_lists_may_be_given_as_lists_by_a_script():
    settings = parse_settings({"blocked_countries": ["de", "FR"], "ineligible_skus": ["A", "B"]})
    assert settings == {"blocked_countries": ["DE", "FR"], "ineligible_skus": ["A", "B"]}


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("handling_days", "-1", "handling days"),
        ("handling_days", "61", "handling days"),
        ("handling_days", "soon", "handling days"),
        ("blocked_countries", "Norway", "not NORWAY"),
        ("blocked_countries", "N0", "not N0"),
        ("carrier", "x" * 256, "carrier"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(field, value, expected):
    with pytest.raises(InvalidInput) as excinfo:
        parse_settings(MultiDict([(field, value)]))
    assert expected in problems(excinfo)


def test_the_packing_form_gives_packages_and_tracking_numbers_within_the_one_package_limit():
    from fulfillment.operator.forms import MAX_PACKAGES, packages_from_form

    form = MultiDict(
        [("package_count", "2"), ("line_id", "11"), ("line_id", "12"), ("qty-1-11", "3"), ("qty-2-12", " 1 ")]
        + [("tracking-1", "T1"), ("tracking-2", "T2")]
    )
    assert packages_from_form(form) == ([[(11, 3), (12, 0)], [(11, 0), (12, 1)]], ["T1", "T2"])
    with pytest.raises(InvalidInput, match=f"1 to {MAX_PACKAGES} packages"):
        packages_from_form(MultiDict({"package_count": str(MAX_PACKAGES + 1)}))
    with pytest.raises(InvalidInput) as excinfo:
        validate_packages({11: MAX_PACKAGES + 1}, [[(11, 1)]] * (MAX_PACKAGES + 1), ["T"] * (MAX_PACKAGES + 1), "DHL")
    assert f"at most {MAX_PACKAGES} packages" in problems(excinfo)
