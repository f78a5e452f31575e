"""Signed HTTP the store sends on its own: fulfillment-service callbacks and webhooks.

Both go out from a thread pool, never from the request that caused them, each shop's in its turn: the pool takes
one notice from each shop with notices waiting before it takes a second from any, as the store's delivery does
not hold one merchant's notices behind another's burst. Callbacks get one attempt (10 s) and are
lost when that fails, as the real store's can be; webhooks are retried with backoff, keeping their
X-Shopify-Webhook-Id. Every attempt is recorded on the shop for the REST API. Fault injection (drop, duplicate,
delay) is applied in `_send`, the single place every request passes through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import requests

from sandbox.model import Callback, Notice, Shop, WebhookDelivery, now
from sandbox.payloads import iso

logger = logging.getLogger("sandbox.notify")

API_VERSION = "2026-07"
# How many attempts the REST API keeps per shop and list (oldest dropped first).
RECORD_LIMIT = 2000
# Topic enum prefixes whose REST topic keeps an underscore (FULFILLMENT_ORDERS_MOVED -> fulfillment_orders/moved).
TOPIC_PREFIXES = (
    "FULFILLMENT_ORDERS",
    "FULFILLMENT_EVENTS",
    "FULFILLMENT_HOLDS",
    "INVENTORY_LEVELS",
    "INVENTORY_ITEMS",
)


def sign(secret: str, body: bytes) -> str:
    """X-Shopify-Hmac-Sha256: base64 of HMAC-SHA256 over the raw body, keyed with the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def rest_topic(topic: str) -> str:
    """The header form of a topic enum value: FULFILLMENTS_CREATE -> fulfillments/create."""
    for prefix in TOPIC_PREFIXES:
        if topic.startswith(prefix + "_"):
            return f"{prefix.lower()}/{topic[len(prefix) + 1 :].lower()}"
    head, _, rest = topic.partition("_")
    return f"{head.lower()}/{rest.lower()}"


class Notifier:
    """Sends notices queued by store transitions; `__call__` returns at once."""

    def __init__(
        self,
        secret: str,
        lock: threading.RLock | threading.Lock,
        callback_timeout_s: float = 10.0,
        webhook_timeout_s: float = 5.0,
        retry_delays_s: Sequence[float] = (1.0, 5.0, 30.0),
        workers: int = 8,
        post: Callable[..., requests.Response] | None = None,
        get: Callable[..., requests.Response] | None = None,
        fetch_timeout_s: float = 20.0,
    ) -> None:
        self.secret = secret
        self.lock = lock  # the store's lock, held while appending to a shop's records
        self.callback_timeout_s = callback_timeout_s
        self.webhook_timeout_s = webhook_timeout_s
        self.retry_delays_s = tuple(retry_delays_s)
        self._post = post or requests.post
        self._get = get or requests.get
        self.fetch_timeout_s = fetch_timeout_s  # the store's own caller waits about 20 s
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox-notify")
        # Notices waiting for a pool thread, per shop; the shops in the order they are served (round robin).
        self._lanes: OrderedDict[str, deque[Callable[[], None]]] = OrderedDict()
        self._lanes_lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()

    # -- scheduling ------------------------------------------------------------------------------------

    def __call__(self, shop: Shop, notice: Notice) -> None:
        if isinstance(notice, Callback):
            self._submit(0.0, self._deliver_callback, shop, notice)
        else:
            self._submit(0.0, self._deliver_webhook, shop, notice, 1)

    def _submit(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        with self._idle:
            self._busy += 1

        def run() -> None:
            try:
                fn(*args)
            except Exception:  # a bug here must not kill the pool thread silently
                logger.exception("notify_failed")
            finally:
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        def start() -> None:
            lane = getattr(args[0], "domain", "") if args else ""
            with self._lanes_lock:
                self._lanes.setdefault(lane, deque()).append(run)
            try:
                # One pool task per notice; each runs whichever notice is next in the shops' rotation.
                self._pool.submit(self._next)
            except RuntimeError:  # shut down meanwhile: the notice is abandoned, like at a store restart
                with self._idle:
                    self._busy -= 1
                    self._idle.notify_all()

        if delay > 0:
            timer = threading.Timer(delay, start)
            timer.daemon = True
            timer.start()
        else:
            start()

    def _next(self) -> None:
        with self._lanes_lock:
            if not self._lanes:
                return
            lane, waiting = next(iter(self._lanes.items()))
            run = waiting.popleft()
            if waiting:
                self._lanes.move_to_end(lane)  # this shop's next notice after every other shop's
            else:
                del self._lanes[lane]
        run()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is queued, sending or waiting for a retry (tests and the demo use this)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- deliveries ------------------------------------------------------------------------------------

    def _deliver_callback(self, shop: Shop, callback: Callback) -> None:
        body = json.dumps({"kind": callback.kind}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-Hmac-Sha256": sign(self.secret, body),
            "X-Shopify-API-Version": API_VERSION,
        }
        for outcome in self._send(shop, callback.url, body, headers, self.callback_timeout_s):
            self._record(shop.callbacks_sent, {"url": callback.url, "kind": callback.kind, **outcome})

    def _deliver_webhook(self, shop: Shop, delivery: WebhookDelivery, attempt: int) -> None:
        body = json.dumps(delivery.payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": rest_topic(delivery.topic),
            "X-Shopify-Hmac-Sha256": sign(self.secret, body),
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-API-Version": API_VERSION,
            "X-Shopify-Webhook-Id": delivery.webhook_id,
            "X-Shopify-Event-Id": delivery.event_id,
            "X-Shopify-Triggered-At": delivery.triggered_at,
        }
        delivered = False
        dropped = False
        for outcome in self._send(shop, delivery.url, body, headers, self.webhook_timeout_s):
            status = outcome.get("status")
            delivered = delivered or (isinstance(status, int) and 200 <= status < 300)
            dropped = dropped or outcome.get("fault") == "dropped"
            self._record(
                shop.webhooks_sent,
                {
                    "topic": delivery.topic,
                    "url": delivery.url,
                    "webhook_id": delivery.webhook_id,
                    "event_id": delivery.event_id,
                    "attempt": attempt,
                    "payload": delivery.payload,
                    **outcome,
                },
            )
        # A dropped delivery is one the store never made, so it has nothing to retry.
        if not delivered and not dropped and attempt <= len(self.retry_delays_s):
            self._submit(self.retry_delays_s[attempt - 1], self._deliver_webhook, shop, delivery, attempt + 1)

    def _send(self, shop: Shop, url: str, body: bytes, headers: dict[str, str], timeout: float) -> list[dict[str, Any]]:
        """POST once (or not, or twice, per the shop's faults); one outcome record per request made."""
        faults = shop.faults
        if faults.roll(faults.drop_rate):
            return [{"at": iso_now(), "status": None, "error": None, "fault": "dropped"}]
        copies = 2 if faults.roll(faults.duplicate_rate) else 1
        if faults.delay_s > 0:
            time.sleep(faults.delay_s)
        outcomes = []
        for copy in range(copies):
            outcome: dict[str, Any] = {
                "at": iso_now(),
                "status": None,
                "error": None,
                "fault": "duplicate" if copy else None,
            }
            try:
                response = self._post(url, data=body, headers=headers, timeout=timeout)
                outcome["status"] = response.status_code
            except requests.RequestException as exc:
                outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
            logger.info(
                "notice_sent shop=%s url=%s status=%s error=%s", shop.domain, url, outcome["status"], outcome["error"]
            )
            outcomes.append(outcome)
        return outcomes

    def fetch(self, shop: Shop, url: str, params: list[tuple[str, str]], kind: str) -> dict[str, Any]:
        """A GET the store makes to a service and waits for (fetch_stock, fetch_tracking_numbers): signed with
        X-Shopify-Hmac-Sha256 over the raw query string. Returns the outcome with the parsed JSON answer."""
        query = urlencode(params)
        headers = {
            "X-Shopify-Shop-Domain": shop.domain,
            "X-Shopify-Hmac-Sha256": sign(self.secret, query.encode()),
            "X-Shopify-API-Version": API_VERSION,
        }
        outcome: dict[str, Any] = {"at": iso_now(), "url": url, "kind": kind, "status": None, "error": None}
        answer: Any = None
        try:
            response = self._get(f"{url}?{query}", headers=headers, timeout=self.fetch_timeout_s)
            outcome["status"] = response.status_code
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:300]
        self._record(shop.callbacks_sent, dict(outcome))
        return {**outcome, "answer": answer}

    def _record(self, records: list[dict[str, Any]], entry: dict[str, Any]) -> None:
        with self.lock:
            records.append(entry)
            del records[:-RECORD_LIMIT]


def iso_now() -> str:
    return iso(now()) or ""
