"""The store asks for tracking numbers by fulfillment name, spelled as REST spells it ("#1001.1"), while the
GraphQL fulfillmentCreate answer we keep spells it "#1001-F1" (as recorded): both must find the package."""

from __future__ import annotations

import pytest

from fulfillment.answers import fulfillment_name_forms


@pytest.mark.parametrize(
    ("name", "forms"),
    [
        ("#1001.1", ("#1001.1", "#1001-F1")),
        ("#1001-F2", ("#1001-F2", "#1001.2")),
        ("#1001.12", ("#1001.12", "#1001-F12")),
        ("SHOP-77.3", ("SHOP-77.3", "SHOP-77-F3")),
        ("#1001", ("#1001",)),
        ("anything", ("anything",)),
    ],
)
def test_a_fulfillment_name_has_both_spellings(name, forms):
    assert fulfillment_name_forms(name) == forms
