"""Webhook subscriptions an app makes through the API: create, update, delete, read, with the store's checks.

The checks follow recorded answers of the store: the address (`uri`) is trimmed, must not be blank or longer
than 64 KB, must be an HTTPS URL outside Shopify's own domains; a filter must name the field of every term.
Every failed check is reported at once, as the store does. Pub/Sub and EventBridge addresses are refused: the
recorded app was not allowed them either, and the sandbox delivers over HTTP only.

One allowance the store does not make: plain `http://` to a loopback host, because an app run locally for
development (or in our tests) has neither TLS nor a public name.
"""

from __future__ import annotations

import re
import shlex
from typing import Any
from urllib.parse import urlsplit

from sandbox.model import (
    Actor,
    InvalidInput,
    Shop,
    StoreUserError,
    UserErrors,
    WebhookSubscription,
    now,
    parse_id,
)
from sandbox.store import is_loopback

ADDRESS_FIELD = ["webhookSubscription", "callbackUrl"]
MAX_ADDRESS_BYTES = 65535  # the store keeps the address in a 64 KB text column
SHOPIFY_DOMAINS = ("shopify.com", "myshopify.com", "shopifycloud.com", "shopify.io", "shopifysvc.com")
NOT_FOUND = "Webhook subscription does not exist"
INVALID_FILTER = "The specified filter is invalid, please ensure you specify the field(s) you wish to filter on."
PUBSUB = re.compile(r"^pubsub://[^:/\s]+:[^:/\s]+$")
APP_NAMESPACE = re.compile(r"^\$app:", re.IGNORECASE)
CONNECTIVES = frozenset({"AND", "OR", "NOT"})


def _address_errors(uri: str) -> list[StoreUserError]:
    if not uri:
        return [InvalidInput("Address can't be blank", ADDRESS_FIELD)]
    if len(uri.encode()) > MAX_ADDRESS_BYTES:
        return [InvalidInput("Address is too big (maximum is 64 KB)", ADDRESS_FIELD)]
    try:
        parts = urlsplit(uri)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return [InvalidInput("Address is invalid", ADDRESS_FIELD)]
    if scheme == "pubsub":
        errors: list[StoreUserError] = [InvalidInput("Address protocol pubsub:// is not supported", ADDRESS_FIELD)]
        if not PUBSUB.match(uri):
            errors.append(
                InvalidInput(
                    "Address is not a valid GCP pub/sub format. Format should be pubsub://project:topic",
                    ADDRESS_FIELD,
                )
            )
        return errors
    if scheme != "https" and not (scheme == "http" and is_loopback(host)):
        return [InvalidInput(f"Address protocol {scheme}:// is not supported", ADDRESS_FIELD)]
    if not host:
        return [InvalidInput("Address is invalid", ADDRESS_FIELD)]
    if any(host == d or host.endswith(f".{d}") for d in SHOPIFY_DOMAINS):
        return [InvalidInput("Address cannot be a Shopify or an internal domain", ADDRESS_FIELD)]
    return []


def filter_is_valid(text: str) -> bool:
    """A filter is search syntax whose every term names its field (`customer_id:123`); a bare word is refused,
    alone or next to qualified terms."""
    try:
        terms = shlex.split(text.replace("(", " ").replace(")", " "))
    except ValueError:
        return False
    for term in terms:
        if term.upper() in CONNECTIVES:
            continue
        field, sep, value = term.lstrip("-").partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z_][\w.]*", field) or not value:
            return False
    return True


def _namespace(value: str, app_id: int) -> str:
    """`$app:Name` is the calling app's reserved namespace, `app--<app id>--Name`; other values stay as given."""
    return APP_NAMESPACE.sub(f"app--{app_id}--", value) if APP_NAMESPACE.match(value) else value


def _changes(given: dict[str, Any], app_id: int) -> tuple[dict[str, Any], list[StoreUserError]]:
    """The record's attributes the input sets, and what is wrong with it."""
    changes: dict[str, Any] = {}
    errors: list[StoreUserError] = []
    if "uri" in given or "callbackUrl" in given:
        uri = (given.get("uri") if given.get("uri") is not None else given.get("callbackUrl")) or ""
        changes["uri"] = uri.strip()
        errors += _address_errors(changes["uri"])
    if given.get("filter") is not None:
        if not filter_is_valid(given["filter"]):
            errors.append(InvalidInput(INVALID_FILTER, ["webhookSubscription"]))
        changes["filter"] = given["filter"]
    for key, attr in (("format", "format"), ("name", "name")):
        if given.get(key) is not None:
            changes[attr] = given[key]
    if given.get("includeFields") is not None:
        changes["include_fields"] = list(given["includeFields"])
    if given.get("metafieldNamespaces") is not None:
        changes["metafield_namespaces"] = [_namespace(n, app_id) for n in given["metafieldNamespaces"]]
    if given.get("metafields") is not None:
        changes["metafields"] = [
            {"namespace": _namespace(m["namespace"], app_id), "key": m["key"]} for m in given["metafields"]
        ]
    return changes, errors


def _refuse(errors: list[StoreUserError]) -> None:
    if errors:
        raise UserErrors(errors)


def _check_unique(shop: Shop, actor: Actor, topic: str, uri: str, record: WebhookSubscription | None) -> None:
    if any(
        s is not record and s.topic == topic and s.uri == uri and s.install_id == actor.install_id
        for s in shop.webhook_subscriptions.values()
    ):
        raise InvalidInput("Address for this topic has already been taken", ADDRESS_FIELD)


def create_webhook_subscription(
    shop: Shop, topic: str, subscription: dict[str, Any], actor: Actor, app_id: int
) -> WebhookSubscription:
    changes, errors = _changes({"uri": None, **subscription}, app_id)
    _refuse(errors)
    _check_unique(shop, actor, topic, changes["uri"], None)
    record = WebhookSubscription(
        id=shop.new_id("WebhookSubscription"), topic=topic, uri=changes.pop("uri"), install_id=actor.install_id
    )
    for attr, value in changes.items():
        setattr(record, attr, value)
    shop.webhook_subscriptions[record.id] = record
    return record


def own_subscription(shop: Shop, actor: Actor, subscription_id: Any) -> WebhookSubscription | None:
    """One of the caller's subscriptions (another app's are invisible to it), or None."""
    sub = shop.webhook_subscriptions.get(parse_id(subscription_id, "WebhookSubscription") or -1)
    return sub if sub is not None and sub.install_id == actor.install_id else None


def update_webhook_subscription(
    shop: Shop, subscription_id: Any, subscription: dict[str, Any], actor: Actor, app_id: int
) -> WebhookSubscription:
    """Set what the input gives; a refused update changes nothing."""
    record = own_subscription(shop, actor, subscription_id)
    if record is None:
        raise InvalidInput(NOT_FOUND, ["id"])
    changes, errors = _changes(subscription, app_id)
    _refuse(errors)
    _check_unique(shop, actor, record.topic, changes.get("uri", record.uri), record)
    for attr, value in changes.items():
        setattr(record, attr, value)
    record.updated_at = now()
    return record


def delete_webhook_subscription(shop: Shop, subscription_id: Any, actor: Actor) -> int:
    record = own_subscription(shop, actor, subscription_id)
    if record is None:
        raise InvalidInput(NOT_FOUND, ["id"])
    del shop.webhook_subscriptions[record.id]
    return record.id


def _matches_query(sub: WebhookSubscription, query: str | None) -> bool:
    """The `query` argument's terms this sandbox knows (`id`, `topic`, `endpoint`/`uri`); others match all."""
    for term in shlex.split(query or ""):
        field, _, value = term.partition(":")
        if field == "id" and value.lstrip("=") != str(sub.id):
            return False
        if field == "topic" and value.upper() != sub.topic:
            return False
        if field in ("endpoint", "uri") and value != sub.uri:
            return False
    return True


def list_webhook_subscriptions(
    shop: Shop,
    actor: Actor,
    topics: list[str] | None = None,
    uri: str | None = None,
    format: str | None = None,
    query: str | None = None,
) -> list[WebhookSubscription]:
    """The caller's subscriptions, filtered as `webhookSubscriptions` / `webhookSubscriptionsCount` ask."""
    return [
        s
        for s in shop.webhook_subscriptions.values()
        if s.install_id == actor.install_id
        and (not topics or s.topic in topics)
        and (uri is None or s.uri == uri)
        and (format is None or s.format == format)
        and _matches_query(s, query)
    ]


def endpoint(sub: WebhookSubscription) -> dict[str, Any]:
    """The deprecated `endpoint` union: only HTTP addresses are ever stored."""
    return {"__typename": "WebhookHttpEndpoint", "callbackUrl": sub.uri}
