"""Webhook subscriptions made through the API, as the store answers them (recorded answers of a real store):
fields, the address and filter checks, updates, reads and counts."""

from __future__ import annotations

import pytest

FIELDS = """id topic uri format includeFields metafieldNamespaces metafields { namespace key } filter
  createdAt updatedAt apiVersion { handle } endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } }"""
CREATE = f"""mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {{
    webhookSubscription {{ {FIELDS} }} userErrors {{ field message }} }} }}"""
UPDATE = f"""mutation($id: ID!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {{
    webhookSubscription {{ {FIELDS} }} userErrors {{ field message }} }} }}"""
DELETE = """mutation($id: ID!) { webhookSubscriptionDelete(id: $id) {
  deletedWebhookSubscriptionId userErrors { field message } } }"""
DETAIL = f"query($id: ID!) {{ webhookSubscription(id: $id) {{ {FIELDS} }} }}"
ADDRESS = ["webhookSubscription", "callbackUrl"]
INVALID_FILTER = "The specified filter is invalid, please ensure you specify the field(s) you wish to filter on."
UNKNOWN = "gid://shopify/WebhookSubscription/999999999999"


def payload(h, document: str, **variables) -> dict:
    body = h.gql(document, variables)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def create(h, topic: str = "SHOP_UPDATE", **sub) -> dict:
    return payload(h, CREATE, topic=topic, sub={"format": "JSON", **sub})


def test_a_subscription_reads_back_with_its_endpoint_namespaces_and_metafields(h):
    created = create(
        h,
        uri="https://example.com/hook",
        includeFields=["id", "name"],
        metafieldNamespaces=["$app:Settings", "custom", "app--999999999999--kept"],
        metafields=[{"namespace": "custom", "key": "color"}],
    )
    assert created["userErrors"] == []
    sub = created["webhookSubscription"]
    assert sub["endpoint"] == {"__typename": "WebhookHttpEndpoint", "callbackUrl": "https://example.com/hook"}
    assert sub["uri"] == "https://example.com/hook" and sub["filter"] is None and sub["format"] == "JSON"
    # `$app:` is the calling app's own namespace; other values stay as given.
    assert sub["metafieldNamespaces"] == ["app--347082227713--Settings", "custom", "app--999999999999--kept"]
    assert sub["metafields"] == [{"namespace": "custom", "key": "color"}]
    assert sub["apiVersion"] == {"handle": "2026-07"}
    assert payload(h, DETAIL, id=sub["id"]) == sub
    bare = create(h, uri="https://example.com/bare", filter="")["webhookSubscription"]
    assert (bare["includeFields"], bare["metafieldNamespaces"], bare["metafields"], bare["filter"]) == ([], [], [], "")


def test_reads_filter_and_count(h):
    first = create(h, uri="https://example.com/a")["webhookSubscription"]
    create(h, "CUSTOMERS_UPDATE", uri="https://example.com/b")
    listed = h.gql(
        'query { webhookSubscriptions(first: 5, uri: "https://example.com/a") { nodes { id } } '
        "all: webhookSubscriptionsCount { count precision } "
        'shop: webhookSubscriptionsCount(query: "topic:shop_update") { count } '
        'none: webhookSubscriptionsCount(query: "id:999999999999", limit: 10) { count precision } }'
    )["data"]
    assert listed["webhookSubscriptions"]["nodes"] == [{"id": first["id"]}]
    assert listed["all"] == {"count": 2, "precision": "EXACT"}
    assert listed["shop"] == {"count": 1}
    assert listed["none"] == {"count": 0, "precision": "EXACT"}
    assert payload(h, DETAIL, id=UNKNOWN) is None


@pytest.mark.parametrize(
    ("uri", "messages"),
    [
        ("   ", ["Address can't be blank"]),
        ("", ["Address can't be blank"]),
        ("http://example.com/hook", ["Address protocol http:// is not supported"]),
        ("https://shopify.com/hook", ["Address cannot be a Shopify or an internal domain"]),
        ("https://demo.myshopify.com/hook", ["Address cannot be a Shopify or an internal domain"]),
        (
            "pubsub://valid-project:",
            [
                "Address protocol pubsub:// is not supported",
                "Address is not a valid GCP pub/sub format. Format should be pubsub://project:topic",
            ],
        ),
        ("https://example.com/" + "a" * (65535 - 20), []),
        ("https://example.com/" + "a" * (65536 - 20), ["Address is too big (maximum is 64 KB)"]),
        ("  https://example.com/h  ", []),
        ("https://[::1", ["Address is invalid"]),
        ("http://127.0.0.1:8000/webhooks", []),  # a locally run app: the sandbox's one allowance
    ],
)
def test_addresses_are_checked(h, uri, messages):
    created = create(h, uri=uri)
    assert created["userErrors"] == [{"field": ADDRESS, "message": m} for m in messages]
    if not messages:
        assert created["webhookSubscription"]["uri"] == uri.strip()


def test_a_missing_address_is_blank(h):
    body = h.gql(CREATE, {"topic": "SHOP_UPDATE", "sub": {"format": "JSON"}})["data"]["webhookSubscriptionCreate"]
    assert body == {
        "webhookSubscription": None,
        "userErrors": [{"field": ADDRESS, "message": "Address can't be blank"}],
    }


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        ("customer_id:10886423675186", True),
        ("customer_id:1 AND tags:vip", True),
        ("", True),
        ("customer_id:10886423675186 bareword", False),
        ("totally bogus syntax", False),
        ("customer_id:", False),
    ],
)
def test_every_filter_term_names_its_field(h, text, valid):
    created = create(h, "CUSTOMERS_UPDATE", uri="https://example.com/f", filter=text)
    errors = [] if valid else [{"field": ["webhookSubscription"], "message": INVALID_FILTER}]
    assert created["userErrors"] == errors


def test_a_refused_update_changes_nothing_and_a_good_one_replaces_what_it_gives(h):
    sub = create(
        h,
        "CUSTOMERS_UPDATE",
        uri="https://example.com/u",
        filter="customer_id:1",
        includeFields=["id", "name"],
        metafieldNamespaces=["custom"],
    )["webhookSubscription"]
    for change, message in (
        ({"uri": ""}, "Address can't be blank"),
        ({"uri": "http://example.com"}, "Address protocol http:// is not supported"),
    ):
        refused = payload(h, UPDATE, id=sub["id"], sub={"format": "JSON", **change})
        assert refused == {"webhookSubscription": None, "userErrors": [{"field": ADDRESS, "message": message}]}
    refused = payload(h, UPDATE, id=sub["id"], sub={"filter": "customer_id:1 bareword"})
    assert refused["userErrors"] == [{"field": ["webhookSubscription"], "message": INVALID_FILTER}]
    assert payload(h, DETAIL, id=sub["id"]) == sub
    updated = payload(
        h,
        UPDATE,
        id=sub["id"],
        sub={"uri": "https://example.com/u2", "includeFields": ["id"], "metafieldNamespaces": ["$app:Billing"]},
    )
    assert updated["userErrors"] == []
    changed = updated["webhookSubscription"]
    assert changed["endpoint"]["callbackUrl"] == "https://example.com/u2" and changed["includeFields"] == ["id"]
    assert changed["metafieldNamespaces"] == ["app--347082227713--Billing"] and changed["filter"] == "customer_id:1"
    assert changed["createdAt"] == sub["createdAt"]


def test_unknown_subscriptions_are_user_errors(h, make):
    missing = [{"field": ["id"], "message": "Webhook subscription does not exist"}]
    assert payload(h, UPDATE, id=UNKNOWN, sub={"uri": "https://example.com/x"}) == {
        "webhookSubscription": None,
        "userErrors": missing,
    }
    assert payload(h, DELETE, id=UNKNOWN) == {"deletedWebhookSubscriptionId": None, "userErrors": missing}
    sub = create(h, uri="https://example.com/d")["webhookSubscription"]
    assert payload(h, DELETE, id=sub["id"]) == {"deletedWebhookSubscriptionId": sub["id"], "userErrors": []}
    assert payload(h, DETAIL, id=sub["id"]) is None
