"""The store's recorded answers to fulfillment-service and webhook checks whose request documents the recordings
did not keep (so the replay cannot send them): we rebuild each request from the recorded variables and compare
the sandbox's userErrors with the recorded ones. Reads ../shared/store-recordings; skipped when it is absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sandbox.conftest import SHOP

RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "store-recordings"
SERVICE = "fulfillmentService { id serviceName callbackUrl } userErrors { field message }"
CREATE = f"""mutation($name: String!, $url: URL) {{
  fulfillmentServiceCreate(name: $name, callbackUrl: $url) {{ {SERVICE} }} }}"""
UPDATE = f"""mutation($id: ID!, $name: String, $url: URL) {{
  fulfillmentServiceUpdate(id: $id, name: $name, callbackUrl: $url) {{ {SERVICE} }} }}"""
WEBHOOK = "webhookSubscription { id } userErrors { field message }"
WEBHOOK_CREATE = f"""mutation($topic: WebhookSubscriptionTopic!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionCreate(topic: $topic, webhookSubscription: $sub) {{ {WEBHOOK} }} }}"""
WEBHOOK_UPDATE = f"""mutation($id: ID!, $sub: WebhookSubscriptionInput!) {{
  webhookSubscriptionUpdate(id: $id, webhookSubscription: $sub) {{ {WEBHOOK} }} }}"""


def recording(name: str) -> dict:
    path = RECORDINGS / name
    if not path.exists():
        pytest.skip("the store recordings (../shared) are not here")
    return json.loads(path.read_text())


def answer(step: dict) -> dict:
    return step["response"]["payload"]["data"]


def as_ours(value: str | None, recorded_shop: str) -> str | None:
    """The recorded shop's own domain stands for the sandbox shop's."""
    return value.replace(recorded_shop, SHOP) if value else value


def run(h, document: str, **variables) -> dict:
    body = h.gql(document, variables)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def test_callback_url_checks_answer_as_recorded(h):
    rec = recording("fulfillment-service-callback-url-validation.json")
    given, recorded = rec["primary"]["variables"], answer(rec["primary"])
    made: dict[str, str] = {}
    for alias, payload in recorded.items():
        case = alias.removesuffix("Create")
        url = as_ours(given[f"{case}CallbackUrl"], rec["storeDomain"])
        got = run(h, CREATE, name=given[f"{case}Name"], url=url)
        assert got["userErrors"] == payload["userErrors"], alias
        assert (got["fulfillmentService"] is None) == (payload["fulfillmentService"] is None), alias
        if payload["fulfillmentService"]:
            made[payload["fulfillmentService"]["id"]] = got["fulfillmentService"]["id"]
    for key in ("updateAllowed", "updateDisallowed"):
        step = rec[key]
        got = run(h, UPDATE, id=made[step["variables"]["id"]], url=step["variables"]["callbackUrl"])
        want = answer(step)["fulfillmentServiceUpdate"]
        assert got["userErrors"] == want["userErrors"], key
        assert (got["fulfillmentService"] or {}).get("callbackUrl") == (want["fulfillmentService"] or {}).get(
            "callbackUrl"
        ), key


def test_name_whitespace_checks_answer_as_recorded(h):
    rec = recording("fulfillment-service-name-whitespace-validation.json")
    given, recorded = rec["primary"]["variables"], answer(rec["primary"])
    refused = run(h, CREATE, name=given["createName"])
    assert refused["userErrors"] == recorded["createWhitespace"]["userErrors"]
    setup = run(h, CREATE, name=given["setupName"])
    assert setup["userErrors"] == recorded["setupUpdateSource"]["userErrors"] == []
    step = rec["updatePrefix"]
    got = run(h, UPDATE, id=setup["fulfillmentService"]["id"], name=step["variables"]["name"])
    assert got == answer(step)["fulfillmentServiceUpdate"]


def test_webhook_update_to_http_answers_as_recorded(h):
    rec = recording("webhook-subscription-uri-validation.json")
    baseline = rec["primary"]["variables"]
    created = run(h, WEBHOOK_CREATE, topic=baseline["baselineTopic"], sub=baseline["baselineWebhookSubscription"])
    assert created["userErrors"] == answer(rec["primary"])["baselineCreate"]["userErrors"] == []
    step = rec["updateHttp"]
    got = run(h, WEBHOOK_UPDATE, id=created["webhookSubscription"]["id"], sub=step["variables"]["webhookSubscription"])
    assert got == answer(step)["webhookSubscriptionUpdate"]
