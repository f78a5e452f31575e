"""One Context and one Redis connection per worker process, made after the fork."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import redis

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.store.throttle import RedisCostBudget

log = logging.getLogger("workers")


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(Config.from_env().redis_url)


# A step never sleeps longer than this for its shop's rate-limit budget: it gives its worker to other work and
# is tried again when the budget has refilled, so one flooded shop cannot hold every worker asleep.
BUDGET_MAX_WAIT_S = 0.5


@cache
def context() -> Context:
    budget = RedisCostBudget(redis_client(), max_wait=BUDGET_MAX_WAIT_S)
    return Context.from_config(Config.from_env(), budget=budget)


class Busy(Exception):
    """Another worker holds the lock; the task is tried again shortly."""


# A lock is a lease: renewed every third of its length while its holder works, so a step may take as long as it
# needs, yet a killed worker's lock lapses within one lease and its fulfillment order moves on.
LOCK_LEASE_S = 30.0


@contextmanager
def exclusive(
    name: str, lease_s: float = LOCK_LEASE_S, wait_s: float = 0.0, client: redis.Redis | None = None
) -> Iterator[None]:
    """One holder at a time, so two copies of a step never race to the store; `wait_s` to queue for it
    rather than raise `Busy` at once. `client` is the caller's Redis (the web process has its own)."""
    # Not thread-local: the renewing thread acts on the token this one took.
    lock = (client or redis_client()).lock(
        f"fulfillment:lock:{name}",
        timeout=lease_s,
        blocking=wait_s > 0,
        blocking_timeout=wait_s or None,
        thread_local=False,
    )
    if not lock.acquire():
        raise Busy(name)
    done = threading.Event()

    def renew() -> None:
        while not done.wait(lease_s / 3):
            try:
                lock.reacquire()
            except redis.exceptions.RedisError as exc:  # lost (Redis restarted) or unreachable: stop renewing
                log.warning("lock_renewal_failed name=%s error=%s", name, exc)
                return

    renewer = threading.Thread(target=renew, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        done.set()
        renewer.join()
        try:
            lock.release()
        except redis.exceptions.RedisError:
            log.warning("lock_expired name=%s", name)
