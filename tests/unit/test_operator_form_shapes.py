"""Edges of the operator's forms that the dashboard's own fields do not reach: nulls from a script, non-finite
numbers, and the cancellation answer."""

import pytest
from werkzeug.datastructures import MultiDict

from fulfillment.operator.forms import InvalidInput, cancellation_message, packages_from_form, parse_settings


def test_refusing_a_cancellation_needs_a_message_and_accepting_does_not():
    assert cancellation_message(True, None) == ""
    assert cancellation_message(False, "  Already picked.  ") == "Already picked."
    for message in (None, "", "   "):
        with pytest.raises(InvalidInput, match="say why the cancellation is refused"):
            cancellation_message(False, message)


@pytest.mark.parametrize("days", ["nan", "inf", "1e400", "-0.1"])
def test_handling_days_that_are_not_a_number_from_0_to_60_are_refused(days):
    with pytest.raises(InvalidInput) as excinfo:
        parse_settings(MultiDict([("handling_days", days)]))
    assert excinfo.value.problems == ["handling days: a number from 0 to 60"]


def test_a_null_from_a_script_is_a_field_left_blank():
    current = {"review_requests": True, "ineligible_skus": ["X"]}
    settings = parse_settings({"review_requests": None, "blocked_countries": None, "ineligible_skus": None}, current)
    assert settings == {"review_requests": False, "blocked_countries": [], "ineligible_skus": []}


@pytest.mark.parametrize("count", [None, "", "0", "x", "99999999999", "-1"])
def test_a_packing_form_without_a_usable_package_count_is_refused(count):
    form = MultiDict([] if count is None else [("package_count", count)])
    with pytest.raises(InvalidInput, match="pack in 1 to"):
        packages_from_form(form)
