"""The shapes of what we take from outside: the store's callback and webhook payloads (per topic) and the warehouse
API's bodies. A body is parsed by `jsonbody` first (bounded), then loaded here; a wrong shape is refused with
the fields at fault named.

Webhook payloads keep the fields we do not read (`unknown = INCLUDE`): the store adds fields over time, and a
field we have not heard of is no reason to refuse a delivery.
"""

from __future__ import annotations

import functools
from typing import Any

from marshmallow import EXCLUDE, INCLUDE, Schema, ValidationError, fields, validate

NOTIFICATION_KINDS = ("FULFILLMENT_REQUEST", "CANCELLATION_REQUEST")


_KIND_ERROR = f"must be one of {', '.join(NOTIFICATION_KINDS)}"


class ShapeError(ValueError):
    """The payload is JSON, but not of the shape its endpoint or topic has."""


class _Payload(Schema):
    class Meta:
        unknown = INCLUDE


class FulfillmentOrderNotification(_Payload):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(NOTIFICATION_KINDS, error=_KIND_ERROR),
        error_messages={"required": _KIND_ERROR, "null": _KIND_ERROR, "invalid": _KIND_ERROR},
    )


class AppUninstalled(_Payload):
    """The shop as the store sends it with `app/uninstalled`: it always names its myshopify domain."""

    id = fields.Integer(strict=True)
    myshopify_domain = fields.String(required=True)
    domain = fields.String(allow_none=True)


class ShopRedact(_Payload):
    shop_id = fields.Integer(strict=True)
    shop_domain = fields.String(required=True)


class CustomersRedact(_Payload):
    shop_id = fields.Integer(strict=True)
    shop_domain = fields.String()
    # Lists of order ids (numbers or gids); entries of another type are skipped where they are read.
    orders_to_redact = fields.Raw()
    customer = fields.Raw()


class CustomersDataRequest(_Payload):
    shop_id = fields.Integer(strict=True)
    shop_domain = fields.String()
    orders_requested = fields.Raw()
    customer = fields.Raw()
    data_request = fields.Raw()


class FulfillmentOrderEvent(_Payload):
    fulfillment_order = fields.Dict()


WEBHOOK_TOPICS: dict[str, type[Schema]] = {
    "app/uninstalled": AppUninstalled,
    "shop/redact": ShopRedact,
    "customers/redact": CustomersRedact,
    "customers/data_request": CustomersDataRequest,
}
# Any other topic is only a JSON object (an unknown topic is recorded and ignored).
_ANY = _Payload


class CancelRequest(Schema):
    """`POST /api/fulfillment_orders/<id>/cancel`: an optional note for the merchant."""

    class Meta:
        unknown = EXCLUDE

    message = fields.String(allow_none=True, load_default=None)


@functools.cache
def _instance(schema: type[Schema]) -> Schema:
    # Building a schema costs several times loading with it; a built one holds no state between loads.
    return schema()


def _load(schema: type[Schema], payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return _instance(schema).load(payload)
    except ValidationError as exc:
        raise ShapeError(_describe(exc.messages)) from exc


def _describe(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{key}: {_describe(value)}" for key, value in sorted(messages.items(), key=str))
    if isinstance(messages, list):
        return ", ".join(_describe(m) for m in messages)
    return str(messages)


def notification(payload: dict[str, Any]) -> dict[str, Any]:
    # The ping's one field, checked by hand as `FulfillmentOrderNotification` says, with its message: on the path
    # the store calls for every merchant action, a schema's load costs more than the rest of the body's checks.
    kind = payload.get("kind")
    if not (isinstance(kind, str) and kind in NOTIFICATION_KINDS):
        raise ShapeError(f"kind: {_KIND_ERROR}")
    return dict(payload)


def webhook(topic: str, payload: dict[str, Any]) -> dict[str, Any]:
    if topic.startswith("fulfillment_orders/"):
        return _load(FulfillmentOrderEvent, payload)
    return _load(WEBHOOK_TOPICS.get(topic, _ANY), payload)


def cancel_request(payload: dict[str, Any]) -> dict[str, Any]:
    return _load(CancelRequest, payload)
