"""One Context and one Redis connection per worker process, made after the fork."""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import redis
from redis.lock import Lock

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
    # What the store reports after each request reaches the shared budget with the next request's reservation,
    # one round trip for both, or at the latest when the task ends (`settle_budget`).
    budget = RedisCostBudget(redis_client(), max_wait=BUDGET_MAX_WAIT_S, defer_updates=True)
    return Context.from_config(Config.from_env(), budget=budget)


def settle_budget(**_kwargs: object) -> None:
    """After every task: the updates its requests left waiting go to the shared budget now."""
    if not context.cache_info().currsize:
        return  # no task of this process has used the store
    try:
        context().budget.settle()
    except redis.exceptions.RedisError as exc:  # bookkeeping: never a task's failure
        log.warning("budget_settle_failed error=%s", type(exc).__name__)


class Busy(Exception):
    """Another worker holds the lock; the task is tried again shortly."""


# A lock is a lease: renewed every third of its length while its holder works, so a step may take as long as it
# needs, yet a killed worker's lock lapses within one lease and its fulfillment order moves on.
LOCK_LEASE_S = 30.0


class _Renewer:
    """One thread per process renews every lease its process holds, so taking a lock starts no thread of its own.
    A lease is renewed every third of its length; one that cannot be (Redis restarted or unreachable) is dropped
    and lapses."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._leases: dict[int, list] = {}  # id -> [lock, name, every_s, next_at]
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:  # a forked worker holds no lease and has no thread yet
        self._cond = threading.Condition()
        self._leases = {}
        self._thread = None

    def add(self, lock: Lock, name: str, every_s: float) -> int:
        key = id(lock)
        with self._cond:
            self._leases[key] = [lock, name, every_s, time.monotonic() + every_s]
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="lease-renewer", daemon=True)
                self._thread.start()
            self._cond.notify()
        return key

    def remove(self, key: int) -> None:
        # Under the condition: no renewal of this lease is under way once it returns, so none follows the release.
        with self._cond:
            self._leases.pop(key, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, lease in list(self._leases.items()):
                    lock, name, every_s, next_at = lease
                    if next_at > now:
                        continue
                    try:
                        lock.reacquire()
                        lease[3] = now + every_s
                    except redis.exceptions.RedisError as exc:  # lost or unreachable: stop renewing
                        log.warning("lock_renewal_failed name=%s error=%s", name, exc)
                        self._leases.pop(key, None)
                soonest = min((lease[3] for lease in self._leases.values()), default=None)
                self._cond.wait(None if soonest is None else max(0.0, soonest - time.monotonic()))


_renewer = _Renewer()


def lock_key(name: str) -> str:
    """The Redis key of the lock `exclusive(name)` takes, for a script that takes it with other work."""
    return f"fulfillment:lock:{name}"


@contextmanager
def exclusive(
    name: str,
    lease_s: float = LOCK_LEASE_S,
    wait_s: float = 0.0,
    client: redis.Redis | None = None,
    taken: str | None = None,
) -> Iterator[Held]:
    """One holder at a time, so two copies of a step never race to the store; `wait_s` to queue for it
    rather than raise `Busy` at once. `client` is the caller's Redis (the web process has its own). `taken` is
    the token of a lock the caller's own script took (`lock_key`, a lease of `lease_s`): held from there on."""
    # Not thread-local: the renewing thread acts on the token this one took.
    lock = (client or redis_client()).lock(
        lock_key(name),
        timeout=lease_s,
        blocking=wait_s > 0,
        blocking_timeout=wait_s or None,
        thread_local=False,
    )
    if taken is not None:
        lock.local.token = taken.encode()
    elif not lock.acquire():
        raise Busy(name)
    held = Held(lock, _renewer.add(lock, name, lease_s / 3))
    try:
        yield held
    except BaseException:
        held.released = False  # a release put in a pipeline may not have run
        raise
    finally:
        _renewer.remove(held.lease)
        if not held.released:
            try:
                lock.release()
            except redis.exceptions.RedisError:
                log.warning("lock_expired name=%s", name)


class Held:
    """A lock `exclusive` holds, which its holder may let go with its own next Redis commands."""

    def __init__(self, lock: Lock, lease: int) -> None:
        self.lock = lock
        self.lease = lease
        self.released = False

    def release_in(self, pipe: redis.client.Pipeline) -> None:
        """Let the lock go with the commands of `pipe`, in its round trip rather than one of its own."""
        _renewer.remove(self.lease)  # no renewal after the release
        self.lock.lua_release(keys=[self.lock.name], args=[self.lock.local.token], client=pipe)
        self.released = True


def freeze_heap(**_kwargs: object) -> None:
    """Everything made while the worker started (the imported code of Celery, SQLAlchemy and ours: hundreds of
    thousands of objects) is set aside from the garbage collector, which otherwise walks all of it again in each
    of its full collections, a good part of a second of CPU each in a worker that works. Run in the worker before
    it forks its pool (the children start with it set aside, and share its memory pages longer) and in each child
    once it has started."""
    gc.freeze()
