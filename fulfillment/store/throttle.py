"""Our model of each shop's rate-limit bucket, so requests wait here instead of being refused by the store.

The store meters every app per shop with a leaky bucket of cost points (see `cost.py`). A `CostBudget` mirrors
that bucket: `acquire` reserves a request's estimated cost before it is sent, sleeping first if the bucket is
in debt, and `update` corrects the model with the `throttleStatus` the store reports in each response.

Reservations may drive the bucket negative: a caller that finds it short takes its points anyway and sleeps
for exactly the time the deficit needs to refill. That makes waiters queue in arrival order (nobody starves
under contention) and keeps the check-and-take atomic, so N workers together never send more than the bucket
holds.

Two implementations: `LocalCostBudget` for one process, and `RedisCostBudget`, shared by every worker process
through one Lua script per step (in a worker, a request's update goes with the next request's acquire).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fulfillment.store.errors import Throttled

# Used until the store's first answer tells us the real bucket. Deliberately below a Standard shop's
# 2000 / 100: development stores have been seen with smaller buckets, and guessing low costs only a wait.
DEFAULT_MAXIMUM_AVAILABLE = 1000.0
DEFAULT_RESTORE_RATE = 50.0
# Waits are stretched by up to this fraction so that workers woken together do not hit the store together.
DEFAULT_JITTER = 0.1

_patience: ContextVar[float | None] = ContextVar("budget_patience", default=None)


@contextmanager
def patience(max_wait: float) -> Iterator[None]:
    """Inside, every budget queues up to `max_wait` seconds instead of its own limit: for work that pays as it
    goes (a listing's pages) and would pay again from the start if it gave up half way."""
    token = _patience.set(max_wait)
    try:
        yield
    finally:
        _patience.reset(token)


def _max_wait(own: float | None) -> float | None:
    patient = _patience.get()
    return own if patient is None else patient


@dataclass(frozen=True)
class ThrottleStatus:
    """The store's view of a shop's bucket, from `extensions.cost.throttleStatus`."""

    maximum_available: float
    currently_available: float
    restore_rate: float

    @classmethod
    def from_response(cls, throttle_status: Mapping[str, Any]) -> ThrottleStatus:
        return cls(
            maximum_available=float(throttle_status["maximumAvailable"]),
            currently_available=float(throttle_status["currentlyAvailable"]),
            restore_rate=float(throttle_status["restoreRate"]),
        )


@dataclass(frozen=True)
class BudgetMetrics:
    """Per-shop counters: points the store charged us, and how often and how long we waited for the bucket."""

    cost_spent: float = 0.0
    throttle_waits: int = 0
    throttle_wait_seconds: float = 0.0


@runtime_checkable
class CostBudget(Protocol):
    """What the store client needs from a budget."""

    def acquire(self, shop: str, cost: int) -> float:
        """Reserve `cost` points of `shop`'s bucket, sleeping until they exist; return the seconds slept.

        A budget with a `max_wait` raises `Throttled` (reserving nothing) rather than queue longer than that
        behind points other requests have already reserved. The refill of a request's own cost is always
        waited for: otherwise a request costing more than `max_wait` of refill (a sweep's page) could never
        get through while smaller ones keep the bucket low.
        """
        ...

    def update(self, shop: str, status: ThrottleStatus, actual_cost: int, reserved: int = 0) -> None:
        """Correct the model with what the store reported after a request that cost `actual_cost`, for which
        `reserved` points were acquired (the unspent rest is given back)."""
        ...


@dataclass
class _Bucket:
    available: float
    maximum: float
    restore_rate: float
    updated_at: float

    def refill(self, now: float) -> None:
        if now > self.updated_at:
            self.available = min(self.maximum, self.available + (now - self.updated_at) * self.restore_rate)
            self.updated_at = now


class LocalCostBudget:
    """A `CostBudget` for one process (thread-safe). `clock`, `sleep` and `rng` are injectable for tests."""

    def __init__(
        self,
        *,
        default_maximum: float = DEFAULT_MAXIMUM_AVAILABLE,
        default_restore_rate: float = DEFAULT_RESTORE_RATE,
        jitter: float = DEFAULT_JITTER,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        max_wait: float | None = None,
    ) -> None:
        self._default_maximum = default_maximum
        self._default_restore_rate = default_restore_rate
        self._jitter = jitter
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._max_wait = max_wait
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._metrics: dict[str, BudgetMetrics] = {}

    def _bucket(self, shop: str, now: float) -> _Bucket:
        bucket = self._buckets.get(shop)
        if bucket is None:
            bucket = self._buckets[shop] = _Bucket(
                self._default_maximum, self._default_maximum, self._default_restore_rate, now
            )
        bucket.refill(now)
        return bucket

    def acquire(self, shop: str, cost: int) -> float:
        with self._lock:
            bucket = self._bucket(shop, self._clock())
            # A cost above the bucket's size could never be covered; the store rejects such a request anyway.
            take = min(cost, bucket.maximum)
            deficit = take - bucket.available
            wait = deficit / bucket.restore_rate if deficit > 0 else 0.0
            max_wait = _max_wait(self._max_wait)
            if max_wait is not None and -bucket.available / bucket.restore_rate > max_wait:
                raise Throttled(retry_after=wait)
            bucket.available -= take
        if wait <= 0:
            return 0.0
        wait *= 1 + self._jitter * self._rng()
        # Sleep outside the lock: the points are already ours, and other threads may queue behind us.
        self._sleep(wait)
        with self._lock:
            m = self._metrics.get(shop, BudgetMetrics())
            self._metrics[shop] = BudgetMetrics(m.cost_spent, m.throttle_waits + 1, m.throttle_wait_seconds + wait)
        return wait

    def update(self, shop: str, status: ThrottleStatus, actual_cost: int, reserved: int = 0) -> None:
        with self._lock:
            bucket = self._bucket(shop, self._clock())
            unspent = max(0.0, min(reserved, bucket.maximum) - actual_cost)
            bucket.maximum = status.maximum_available
            bucket.restore_rate = status.restore_rate
            # Never raise the estimate to the store's figure: the store has not yet charged the requests that
            # other threads reserved for and are still sending, and counting those points twice overspends.
            # What this request reserved beyond its actual cost is ours again, as the store refunded it too.
            bucket.available = min(bucket.available + unspent, status.currently_available, bucket.maximum)
            m = self._metrics.get(shop, BudgetMetrics())
            self._metrics[shop] = BudgetMetrics(m.cost_spent + actual_cost, m.throttle_waits, m.throttle_wait_seconds)

    def available(self, shop: str) -> float:
        """Points the model believes `shop`'s bucket holds now (negative while reservations wait)."""
        with self._lock:
            return self._bucket(shop, self._clock()).available

    def metrics(self, shop: str) -> BudgetMetrics:
        with self._lock:
            return self._metrics.get(shop, BudgetMetrics())


# KEYS[1] the shop's bucket. ARGV: cost, default maximum, default restore rate, now ('' = Redis server time,
# which every worker shares, unlike their own clocks), ttl, max wait ('' = none). Returns the seconds to wait, as
# a string because Redis truncates Lua numbers to integers; negative when the wait would pass the max wait and
# nothing was taken.
_REFILL_LUA = """
local function now_or_server_time(arg)
  if arg ~= '' then return tonumber(arg) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function load(key, now, default_max, default_rate)
  local s = redis.call('HMGET', key, 'available', 'maximum', 'rate', 'ts')
  local maximum = tonumber(s[2]) or default_max
  local rate = tonumber(s[3]) or default_rate
  local available = tonumber(s[1]) or maximum
  local ts = tonumber(s[4]) or now
  if now > ts then
    available = math.min(maximum, available + (now - ts) * rate)
    ts = now
  end
  return available, maximum, rate, ts
end
local function store(key, available, maximum, rate, ts, ttl)
  redis.call('HSET', key,
    'available', string.format('%.6f', available), 'maximum', string.format('%.6f', maximum),
    'rate', string.format('%.6f', rate), 'ts', string.format('%.6f', ts))
  redis.call('EXPIRE', key, ttl)
end
"""

_ACQUIRE_BODY = """
local now = now_or_server_time(ARGV[4])
local available, maximum, rate, ts = load(KEYS[1], now, tonumber(ARGV[2]), tonumber(ARGV[3]))
local take = math.min(tonumber(ARGV[1]), maximum)
if ARGV[6] ~= '' and available < 0 and -available / rate > tonumber(ARGV[6]) then
  return string.format('-%.6f', (take - available) / rate)
end
available = available - take
store(KEYS[1], available, maximum, rate, ts, tonumber(ARGV[5]))
if available >= 0 then return '0' end
return string.format('%.6f', -available / rate)
"""
_ACQUIRE_LUA = _REFILL_LUA + _ACQUIRE_BODY

# One settlement: KEYS k, k+1 the shop's bucket and its metrics; ARGV a..a+8: maximum, currently available,
# restore rate (as the store reported them), actual cost, default maximum, default restore rate, now, ttl, points
# reserved.
_SETTLE_LUA = """
local function settle(k, a)
  local now = now_or_server_time(ARGV[a + 6])
  local available, old_maximum, _, ts = load(KEYS[k], now, tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5]))
  local maximum = tonumber(ARGV[a])
  local unspent = math.max(0, math.min(tonumber(ARGV[a + 8]), old_maximum) - tonumber(ARGV[a + 3]))
  available = math.min(available + unspent, tonumber(ARGV[a + 1]), maximum)
  store(KEYS[k], available, maximum, tonumber(ARGV[a + 2]), ts, tonumber(ARGV[a + 7]))
  redis.call('HINCRBYFLOAT', KEYS[k + 1], 'cost_spent', ARGV[a + 3])
end
"""

# KEYS[1] the shop's bucket, KEYS[2] its metrics; ARGV as for one settlement.
_UPDATE_LUA = (
    _REFILL_LUA
    + _SETTLE_LUA
    + """
settle(1, 1)
return 'ok'
"""
)

# The settlements a process put off (`defer_updates`), then an acquire. KEYS: the acquiring shop's bucket, then
# two per settlement; ARGV: the acquire's six, then nine per settlement. The settlements come first, as they came
# first in time.
_SETTLE_AND_ACQUIRE_LUA = (
    _REFILL_LUA
    + _SETTLE_LUA
    + """
local k, a = 2, 7
while a <= #ARGV do
  settle(k, a)
  k, a = k + 2, a + 9
end
"""
    + _ACQUIRE_BODY
)


class RedisCostBudget:
    """A `CostBudget` shared by every process that uses the same Redis and key prefix: one bucket per shop.

    State lives in the hash `<prefix>:<shop>` (available, maximum, rate, ts; expires when idle, since an idle
    bucket is simply full), counters in `<prefix>:<shop>:metrics` (cost_spent, throttle_waits,
    throttle_wait_seconds). Time is Redis's own unless a `clock` is given (tests).
    """

    def __init__(
        self,
        redis_client: Any,
        key_prefix: str = "fulfillment:budget",
        *,
        default_maximum: float = DEFAULT_MAXIMUM_AVAILABLE,
        default_restore_rate: float = DEFAULT_RESTORE_RATE,
        jitter: float = DEFAULT_JITTER,
        idle_ttl_seconds: int = 3600,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        max_wait: float | None = None,
        defer_updates: bool = False,
    ) -> None:
        self._redis = redis_client
        self._max_wait = max_wait
        # With `defer_updates` an update waits in the process for its next acquire and goes to Redis with it, in
        # one script, rather than in a round trip of its own; `settle()` sends what still waits (the worker does
        # at the end of every task, so nothing waits longer than the task that made it).
        self._defer = defer_updates
        self._pending: list[tuple[list[str], list[Any]]] = []
        self._pending_lock = threading.Lock()
        self._prefix = key_prefix
        self._default_maximum = default_maximum
        self._default_restore_rate = default_restore_rate
        self._jitter = jitter
        self._ttl = idle_ttl_seconds
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._acquire_script = redis_client.register_script(_ACQUIRE_LUA)
        self._update_script = redis_client.register_script(_UPDATE_LUA)
        self._settle_and_acquire_script = redis_client.register_script(_SETTLE_AND_ACQUIRE_LUA)

    def _state_key(self, shop: str) -> str:
        return f"{self._prefix}:{shop}"

    def _metrics_key(self, shop: str) -> str:
        return f"{self._prefix}:{shop}:metrics"

    def _now_arg(self) -> str:
        return "" if self._clock is None else repr(self._clock())

    def acquire(self, shop: str, cost: int) -> float:
        keys = [self._state_key(shop)]
        args = [
            cost,
            self._default_maximum,
            self._default_restore_rate,
            self._now_arg(),
            self._ttl,
            "" if (max_wait := _max_wait(self._max_wait)) is None else repr(max_wait),
        ]
        pending = self._take_pending()
        if pending:
            for settle_keys, settle_args in pending:
                keys += settle_keys
                args += settle_args
            wait = float(self._settle_and_acquire_script(keys=keys, args=args))
        else:
            wait = float(self._acquire_script(keys=keys, args=args))
        if wait < 0:
            raise Throttled(retry_after=-wait)
        if wait == 0:
            return 0.0
        wait *= 1 + self._jitter * self._rng()
        self._sleep(wait)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hincrby(self._metrics_key(shop), "throttle_waits", 1)
        pipe.hincrbyfloat(self._metrics_key(shop), "throttle_wait_seconds", wait)
        pipe.execute()
        return wait

    def update(self, shop: str, status: ThrottleStatus, actual_cost: int, reserved: int = 0) -> None:
        keys = [self._state_key(shop), self._metrics_key(shop)]
        args = [
            status.maximum_available,
            status.currently_available,
            status.restore_rate,
            actual_cost,
            self._default_maximum,
            self._default_restore_rate,
            self._now_arg(),
            self._ttl,
            reserved,
        ]
        if self._defer:
            with self._pending_lock:
                self._pending.append((keys, args))
            return
        self._update_script(keys=keys, args=args)

    def settle(self, pipe: Any = None) -> None:
        """Send the updates still waiting for an acquire (`defer_updates`); one round trip for all of them, or
        none of its own when `pipe` (a pipeline of the caller's, which sends them) is given."""
        pending = self._take_pending()
        if not pending:
            return
        own = pipe is None
        pipe = self._redis.pipeline(transaction=False) if own else pipe
        for keys, args in pending:
            self._update_script(keys=keys, args=args, client=pipe)
        if own:
            with pipe:
                pipe.execute()

    def _take_pending(self) -> list[tuple[list[str], list[Any]]]:
        # Taken whatever the script's fate: an update Redis could not take is lost, as one sent at once would be.
        if not self._pending:
            return []
        with self._pending_lock:
            pending, self._pending = self._pending, []
        return pending

    def available(self, shop: str) -> float:
        """Points the shared model believes `shop`'s bucket holds, as of its last change (no refill)."""
        raw = self._redis.hget(self._state_key(shop), "available")
        return self._default_maximum if raw is None else float(raw)

    def metrics(self, shop: str) -> BudgetMetrics:
        raw = {_text(k): _text(v) for k, v in self._redis.hgetall(self._metrics_key(shop)).items()}
        return BudgetMetrics(
            cost_spent=float(raw.get("cost_spent", 0)),
            throttle_waits=int(raw.get("throttle_waits", 0)),
            throttle_wait_seconds=float(raw.get("throttle_wait_seconds", 0)),
        )


def _text(value: bytes | str) -> str:
    # The caller's Redis client may or may not decode responses.
    return value.decode() if isinstance(value, bytes) else value


__all__ = [
    "DEFAULT_MAXIMUM_AVAILABLE",
    "DEFAULT_RESTORE_RATE",
    "BudgetMetrics",
    "CostBudget",
    "LocalCostBudget",
    "RedisCostBudget",
    "ThrottleStatus",
]
