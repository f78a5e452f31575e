"""The warehouse API: what a merchant's request reaches us through when the store offers no button for it."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, jsonify, request

from app.deps import ctx
from fulfillment import schemas
from fulfillment.context import ShopNotConnected
from fulfillment.jsonbody import BadJson, parse_json_object
from fulfillment.step import NotCancellable, cancel_in_warehouse
from fulfillment.store.errors import StoreError

bp = Blueprint("api", __name__, url_prefix="/api")
# What the API takes is a short note: a body this size is already far more than any caller needs.
MAX_BODY_BYTES = 64 * 1024


@bp.before_request
def _require_token():
    expected = ctx().config.operator_api_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(401)


def _body() -> dict:
    """The JSON object sent (none is an empty one), bounded like every body we read, in the shape asked for."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        return {}
    try:
        return schemas.cancel_request(parse_json_object(raw, max_bytes=MAX_BODY_BYTES))
    except (BadJson, schemas.ShapeError) as exc:
        abort(400, description=str(exc))


@bp.post("/fulfillment_orders/<int:record_id>/cancel")
def cancel_fulfillment_order(record_id: int):
    body = _body()
    message = (body.get("message") or "Cancelled at the merchant's request.")[:500]
    try:
        cancel_in_warehouse(ctx(), record_id, message)
    except NotCancellable as exc:
        return jsonify(cancelled=False, reason=str(exc)), 409
    except ShopNotConnected:
        return jsonify(cancelled=False, reason="the shop has uninstalled the app"), 409
    except StoreError as exc:
        # Nothing was changed that the next try would not see: the store is asked again then.
        return jsonify(cancelled=False, reason=f"the store did not answer: {exc}"), 502
    return jsonify(cancelled=True)
