"""The transport to one shop's Admin GraphQL API: send a document, get its `data` or a named exception.

It owns what every request shares: the URL and token, the rate-limit budget (reserve before sending, learn
from `extensions.cost` after), waiting out THROTTLED answers, and mapping failures onto `errors.py`. It does
not retry 5xx or timeouts: the worker's retry machinery does that with backoff, and for mutations only after
checking the store's state, which only the caller knows how to do.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests
import urllib3.exceptions
from graphql import OperationType

from fulfillment.shop_domain import require_shop_domain
from fulfillment.store.cost import estimate_cost, operation_of, parse_document
from fulfillment.store.errors import (
    GraphQLQueryError,
    NotFound,
    StoreError,
    StoreUnavailable,
    Throttled,
    Unauthorized,
)
from fulfillment.store.throttle import CostBudget, ThrottleStatus

API_VERSION = "2026-07"

logger = logging.getLogger("fulfillment.store")

# A 429 without Retry-After, or a THROTTLED answer without a throttleStatus, gives us nothing to compute from.
_FALLBACK_THROTTLE_WAIT = 1.0
# Never retry a THROTTLED answer sooner than this: the bucket refills continuously, not in steps.
_MIN_THROTTLE_WAIT = 0.05
_THROTTLE_JITTER = 0.25

OnCost = Callable[[str, int, ThrottleStatus], None]


class StoreClient:
    """Sends GraphQL documents to one shop, on behalf of one access token."""

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        base_url: str | None = None,
        session: requests.Session | None = None,
        budget: CostBudget | None = None,
        timeout: float = 10.0,
        max_throttle_wait: float = 30.0,
        on_cost: OnCost | None = None,
    ) -> None:
        # Validated before anything else: the token must never be sent to a host an outsider chose.
        self.shop = require_shop_domain(shop_domain)
        if not access_token:
            raise ValueError("an access token is required")
        self._access_token = access_token
        if base_url is None:
            self.url = f"https://{self.shop}/admin/api/{API_VERSION}/graphql.json"
        else:
            # A local stand-in store (the sandbox) serves many shops under one host.
            self.url = f"{base_url.rstrip('/')}/store/{self.shop}/admin/api/{API_VERSION}/graphql.json"
        self._session = session if session is not None else requests.Session()
        self._budget = budget
        self._timeout = timeout
        self._max_throttle_wait = max_throttle_wait
        self._on_cost = on_cost

    def __repr__(self) -> str:
        # Spelled out so that the token can never reach a log through repr().
        return f"StoreClient(shop={self.shop!r}, url={self.url!r})"

    def execute(
        self, document: str, variables: Mapping[str, Any] | None = None, *, operation_cost: int | None = None
    ) -> dict[str, Any]:
        """Run `document` and return its `data`; raise a `StoreError` subclass otherwise.

        `operation_cost` overrides the static estimate reserved from the budget.
        """
        operation = operation_of(parse_document(document))
        name = operation.name.value if operation.name else "anonymous"
        is_mutation = operation.operation is OperationType.MUTATION
        requested = operation_cost if operation_cost is not None else estimate_cost(document, variables)
        payload = {"query": document, "variables": dict(variables or {})}

        waited = 0.0
        owed = 0.0  # what the last THROTTLED answer asked us to wait
        while True:
            slept = self._acquire(requested, name)
            if slept < owed:
                # No budget, or one that could not be reached or did not know: wait out the store's figure.
                extra = (owed - slept) * (1 + _THROTTLE_JITTER * random.random())
                time.sleep(extra)
                slept += extra
            waited += slept
            try:
                return self._send_once(payload, name, is_mutation, requested)
            except _ThrottledOnce as throttled:
                wait = throttled.wait
                if waited + wait > self._max_throttle_wait:
                    logger.warning(
                        "store.throttled shop=%s operation=%s requested_cost=%s waited_s=%.2f giving_up=true",
                        self.shop,
                        name,
                        requested,
                        waited,
                    )
                    raise Throttled(retry_after=wait) from None
                logger.info(
                    "store.throttled shop=%s operation=%s requested_cost=%s wait_s=%.2f",
                    self.shop,
                    name,
                    requested,
                    wait,
                )
                # A budget has just learned the store's figures, so its next acquire() sleeps the deficit.
                owed = wait

    def _send_once(self, payload: dict[str, Any], name: str, is_mutation: bool, requested: int) -> dict[str, Any]:
        started = time.monotonic()
        try:
            prepared = _request_for(self._session, self.url).copy()
            prepared.headers["X-Shopify-Access-Token"] = self._access_token
            prepared.prepare_body(data=None, files=None, json=payload)
            response = self._session.send(
                prepared,
                timeout=self._timeout,
                **_environment(self._session, self.url),
            )
        except requests.RequestException as exc:
            maybe_applied = is_mutation and not _never_sent(exc)
            logger.warning(
                "store.unavailable shop=%s operation=%s error=%s maybe_applied=%s",
                self.shop,
                name,
                type(exc).__name__,
                maybe_applied,
            )
            raise StoreUnavailable(
                f"{name}: {type(exc).__name__} talking to {self.shop}", maybe_applied=maybe_applied
            ) from None
        elapsed_ms = int((time.monotonic() - started) * 1000)
        status_code = response.status_code

        if status_code == 429:
            wait = _retry_after(response.headers.get("Retry-After"))
            raise _ThrottledOnce(wait, None)
        if status_code in (401, 403):
            logger.warning("store.unauthorized shop=%s operation=%s status=%s", self.shop, name, status_code)
            raise Unauthorized(f"{name}: the store refused our access token (HTTP {status_code})")
        if status_code >= 500:
            logger.warning(
                "store.unavailable shop=%s operation=%s status=%s maybe_applied=%s",
                self.shop,
                name,
                status_code,
                is_mutation,
            )
            raise StoreUnavailable(f"{name}: HTTP {status_code} from {self.shop}", maybe_applied=is_mutation)
        if status_code != 200:
            logger.warning("store.unexpected shop=%s operation=%s status=%s", self.shop, name, status_code)
            raise StoreError(f"{name}: unexpected HTTP {status_code} from {self.shop}")

        try:
            body = response.json()
        except ValueError:
            # A 200 that is not JSON comes from something between us and the store, not from the store.
            raise StoreUnavailable(f"{name}: non-JSON answer from {self.shop}", maybe_applied=is_mutation) from None
        if not isinstance(body, dict):
            raise StoreUnavailable(f"{name}: malformed answer from {self.shop}", maybe_applied=is_mutation)

        cost = (body.get("extensions") or {}).get("cost") or {}
        status = self._record_cost(cost, name, requested)
        actual = cost.get("actualQueryCost")
        logger.info(
            "store.request shop=%s operation=%s status=%s requested_cost=%s actual_cost=%s available=%s elapsed_ms=%s",
            self.shop,
            name,
            status_code,
            cost.get("requestedQueryCost", requested),
            actual,
            None if status is None else status.currently_available,
            elapsed_ms,
        )

        errors = body.get("errors")
        if errors:
            self._raise_for_errors(errors, name, is_mutation, cost, status, requested)
        data = body.get("data")
        if not isinstance(data, dict):
            raise GraphQLQueryError(f"{name}: answer without data", [])
        return data

    def _acquire(self, requested: int, name: str) -> float:
        if self._budget is None:
            return 0.0
        try:
            return self._budget.acquire(self.shop, requested)
        except Throttled:
            raise  # the budget will not wait that long: nothing was sent, the caller tries again later
        except Exception as exc:
            # The budget only spares us THROTTLED answers, which we handle anyway: a budget outage (Redis
            # down) must not stop fulfilment.
            logger.warning("store.budget_failed shop=%s operation=%s step=acquire error=%s", self.shop, name, exc)
            return 0.0

    def _record_cost(self, cost: Mapping[str, Any], name: str, reserved: int) -> ThrottleStatus | None:
        raw_status = cost.get("throttleStatus")
        if not raw_status:
            return None
        status = ThrottleStatus.from_response(raw_status)
        actual = int(cost.get("actualQueryCost") or 0)
        # Bookkeeping after the store has answered must never raise: the caller would take an applied
        # mutation for a failed one and might send it again.
        if self._budget is not None:
            self._safely("update", name, self._budget.update, self.shop, status, actual, reserved)
        if self._on_cost is not None:
            self._safely("on_cost", name, self._on_cost, self.shop, actual, status)
        return status

    def _safely(self, step: str, name: str, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            logger.warning("store.bookkeeping_failed shop=%s operation=%s step=%s error=%s", self.shop, name, step, exc)

    def _raise_for_errors(
        self,
        errors: Any,
        name: str,
        is_mutation: bool,
        cost: Mapping[str, Any],
        status: ThrottleStatus | None,
        requested: int,
    ) -> None:
        if not isinstance(errors, list):
            # The store answers a malformed request with `errors` as a single string.
            raise GraphQLQueryError(f"{name}: {errors}", [])
        codes = {((e.get("extensions") or {}).get("code") if isinstance(e, dict) else None) for e in errors}
        messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
        if "THROTTLED" in codes:
            store_requested = int(cost.get("requestedQueryCost") or requested)
            if status is None:
                raise _ThrottledOnce(_FALLBACK_THROTTLE_WAIT, None)
            if store_requested > status.maximum_available:
                raise GraphQLQueryError(
                    f"{name}: requested cost {store_requested} exceeds {self.shop}'s bucket of "
                    f"{status.maximum_available:g}; ask for fewer items",
                    errors,
                )
            deficit = max(0.0, store_requested - status.currently_available)
            raise _ThrottledOnce(max(_MIN_THROTTLE_WAIT, deficit / status.restore_rate), status)
        if "RESOURCE_NOT_FOUND" in codes:
            raise NotFound(f"{name}: {messages}")
        if "ACCESS_DENIED" in codes:
            raise Unauthorized(f"{name}: {messages}")
        if "INTERNAL_SERVER_ERROR" in codes:
            raise StoreUnavailable(f"{name}: store error: {messages}", maybe_applied=is_mutation)
        logger.error(
            "store.query_error shop=%s operation=%s codes=%s",
            self.shop,
            name,
            ",".join(sorted(map(str, codes))),
        )
        raise GraphQLQueryError(f"{name}: {messages}", errors)


def _token_in_header(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """The access token travels in its own header: no auth to add, and no .netrc to look up on every request."""
    return request


_ENVIRONMENTS: dict[tuple[int, str], dict[str, Any]] = {}
_REQUESTS: dict[tuple[int, str], requests.PreparedRequest] = {}


def _request_for(session: requests.Session, url: str) -> requests.PreparedRequest:
    """The request every call to `url` starts from, prepared once per session and store URL (headers merged with
    the session's, hooks): each call copies it and adds its token and body. Preparing it whole each time merged
    headers and cookie jars on every request; the store's API sets no cookies to merge."""
    key = (id(session), url)
    found = _REQUESTS.get(key)
    if found is None:
        found = session.prepare_request(
            requests.Request(
                "POST",
                url,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
                auth=_token_in_header,
            )
        )
        if len(_REQUESTS) > 10_000:  # one entry a shop and session: bounded all the same
            _REQUESTS.clear()
        _REQUESTS[key] = found
    return found


def _environment(session: requests.Session, url: str) -> dict[str, Any]:
    """Proxies and CA bundle from the environment for `url`, as `requests` would find them, worked out once per
    session and store URL: `requests` does it on every request, walking the whole environment each time."""
    key = (id(session), url)
    found = _ENVIRONMENTS.get(key)
    if found is None:
        found = session.merge_environment_settings(url, {}, None, None, None)
        if len(_ENVIRONMENTS) > 10_000:  # one entry a shop and session: bounded all the same
            _ENVIRONMENTS.clear()
        _ENVIRONMENTS[key] = found
    return found


class _ThrottledOnce(Exception):
    """Internal: one THROTTLED answer, with the wait it implies."""

    def __init__(self, wait: float, status: ThrottleStatus | None) -> None:
        self.wait = wait
        self.status = status


def _retry_after(header: str | None) -> float:
    try:
        return max(_MIN_THROTTLE_WAIT, float(header)) if header else _FALLBACK_THROTTLE_WAIT
    except ValueError:
        return _FALLBACK_THROTTLE_WAIT


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the failure happened before the request could reach the store (so a mutation did not run)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        # requests wraps urllib3's MaxRetryError, whose `reason` tells a refused/unresolvable connection
        # (never sent) from one dropped mid-request (which may have been processed).
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        return isinstance(reason, urllib3.exceptions.NewConnectionError)
    return False


__all__ = ["API_VERSION", "StoreClient"]
