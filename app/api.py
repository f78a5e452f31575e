"""The warehouse API: what a merchant's request reaches us through when the store offers no button for it."""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, jsonify, request

from app.deps import ctx
from fulfillment.step import NotCancellable, cancel_in_warehouse

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _require_token():
    expected = ctx().config.operator_api_token
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        abort(401)


@bp.post("/fulfillment_orders/<int:record_id>/cancel")
def cancel_fulfillment_order(record_id: int):
    body = request.get_json(silent=True) or {}
    message = str(body.get("message") or "Cancelled at the merchant's request.")[:500]
    try:
        cancel_in_warehouse(ctx(), record_id, message)
    except NotCancellable as exc:
        return jsonify(cancelled=False, reason=str(exc)), 409
    return jsonify(cancelled=True)
