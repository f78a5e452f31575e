"""Putting work on the queue, for the web process and the tasks alike: the one way to ask for a sweep or a step.

Pings for one shop fold into one sweep of each scope, spaced by what the shop's last sweep of its kind
listed; the schedule spreads the shops' sweeps over the interval, and idle shops' go behind all other work. A
step joins a chain of steps for its fulfillment order, and a shop has a bounded number of chains moving at a
time (`ShopQueue`).
The fulfillment-order lock is the one the tasks and the dashboard both take around a step.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import redis
from celery import Celery

from fulfillment.states import Cause
from fulfillment.sweep import Due, Scope
from workers.runtime import LOCK_LEASE_S, Busy, Held, exclusive, lock_key

# The tasks' names, as `workers.tasks` registers them and as senders name them.
SWEEP_SHOP_TASK = "workers.tasks.sweep_shop"
SWEEP_ALL_SHOPS_TASK = "workers.tasks.sweep_all_shops"
SWEEP_DUE_SHOPS_TASK = "workers.tasks.sweep_due_shops"
STEP_TASK = "workers.tasks.advance_fulfillment_order"
DELIVERY_EVENT_TASK = "workers.tasks.post_delivery_event"
PUSH_DUE_INVENTORY_TASK = "workers.tasks.push_due_inventory"
PUSH_INVENTORY_TASK = "workers.tasks.push_inventory"
RECONCILE_ALL_INVENTORY_TASK = "workers.tasks.reconcile_all_inventory"
RECONCILE_INVENTORY_TASK = "workers.tasks.reconcile_inventory"
# A shop's inventory push waiting in the queue: the scans that find it still owed queue no second one.
INVENTORY_PENDING_KEY = "fulfillment:inventory-pending:{shop_id}"
INVENTORY_PENDING_TTL_S = 60
PRUNE_DELIVERIES_TASK = "workers.tasks.prune_deliveries"

# A sweep of each scope (`fulfillment.sweep.Scope`) waits at most once per shop: pings fold into it.
SWEEP_PENDING_KEY = "fulfillment:sweep-pending:{shop_id}:{scope}"
SWEEP_PENDING_TTL_S = 60
# How long a web process may go on folding a shop's pings on Redis's word that the shop's sweep was waiting,
# without asking again (`WaitingSweeps`): a burst of pings costs a round trip each this long, not one each. A
# sweep waits this long after it stops folding pings before it lists anything (`sweep_started`), so every ping
# folded on that word was received, and its request made, before the sweep looks.
FOLD_WINDOW_S = 0.01
# Shops the store told us about (a callback, a webhook) since the last sweep of theirs that finished, each with when
# it last told us. Beat sweeps them at the pace of shops with open work: a sweep lost with its worker (the host cut
# off, the process killed) is made again within SWEEP_INTERVAL_S, not at the idle shops' pace. A finished sweep
# that started after the latest notice takes the shop off.
NOTICED_KEY = "fulfillment:noticed"
NOTICES = frozenset({Cause.CALLBACK, Cause.WEBHOOK})
# When the shop's next sweep of a listing kind may start (REQUESTS, or FULL for FULL and IDLE alike).
SWEEP_NEXT_KEY = "fulfillment:sweep-next:{shop_id}:{listing}"
SWEEP_NEXT_TTL_S = 3600
SWEEP_LISTED_KEY = "fulfillment:sweep-listed:{shop_id}:{listing}"  # how many the last sweep of a kind listed
# A full sweep lists every fulfillment order in our hands, so its cost grows with the shop's open work. Webhooks
# arrive with every merchant action; full sweeps of one shop start at least this far apart, whatever the pings.
SWEEP_SPACING_S = 1.0
# A REQUESTS sweep lists only what waits on us: the new request and the few not answered yet. It starts as soon
# as the ping arrives, so a request goes to its step without waiting out a full sweep's spacing; one that listed
# no more than this many costs a handful of points (a request's accept alone costs 10), and only a longer list
# spaces the next one by its cost.
REQUESTS_SPACING_S = 0.0
REQUESTS_UNSPACED_LISTING = 10
# A listing costs about a point per fulfillment order. A shop with many listed is swept less often, so that its
# sweeps of each kind spend no more than this many points a second: a tenth of the slowest plan's restore rate
# (50/s). The steps re-read each fulfillment order before anything irreversible, so a slower sweep delays news,
# never a safety check.
SWEEP_POINTS_PER_S = 5.0

# Celery's Redis transport serves priority 0 before 3, 6 and 9 (each a list of its own, read in that order).
# Real work (pings, steps) at 0; scheduled sweeps of shops with open work at 3; the steps of a shop whose
# fulfillment orders queue for a place among its chains (a flood) at 6; safety sweeps of idle shops at 9,
# behind everything else, so a thousand idle shops never sit in front of one order.
PRIORITY_DEFAULT = 0
PRIORITY_SCHEDULED = 3
PRIORITY_FLOODED = 6
PRIORITY_IDLE = 9


def scope_for(cause: str) -> Scope:
    """What a sweep asked for with this cause lists: a callback is about a request, anything else may be about
    work in our hands."""
    return Scope.REQUESTS if cause == Cause.CALLBACK else Scope.FULL


def sweep_priority(scope: Scope | str, scheduled: bool = False) -> int:
    if scope == Scope.IDLE:
        return PRIORITY_IDLE
    return PRIORITY_SCHEDULED if scheduled else PRIORITY_DEFAULT


def _listing(scope: Scope | str) -> str:
    return Scope.REQUESTS if scope == Scope.REQUESTS else Scope.FULL


class WaitingSweeps:
    """One web process's memory of the shops whose sweep Redis said was waiting, and when it asked.

    On the store's busiest path, a ping folds into a waiting sweep for `FOLD_WINDOW_S` after Redis last said one
    was waiting, without a round trip. The time kept is when the question was sent, before Redis answered: the
    sweep stopped folding pings no earlier than that, and it waits out the window before listing.
    """

    def __init__(self, window_s: float = FOLD_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.clock = clock
        self._asked: dict[tuple[int, str], float] = {}

    def waiting(self, shop_id: int, scope: Scope | str) -> bool:
        asked = self._asked.get((shop_id, scope))
        return asked is not None and self.clock() - asked < self.window_s

    def heard(self, shop_id: int, scope: Scope | str, asked: float) -> None:
        key = (shop_id, scope)
        self._asked[key] = max(asked, self._asked.get(key, asked))


def request_sweep(
    celery: Celery,
    redis_client: redis.Redis,
    shop_id: int,
    cause: str,
    clock: Callable[[], float] = time.time,
    *,
    scope: Scope | None = None,
    priority: int | None = None,
    waiting: WaitingSweeps | None = None,
) -> bool:
    """Queue a sweep of the shop unless one of the same scope is already waiting; True when a new one was
    queued. The scope is `scope_for(cause)` unless given.

    Duplicate and coalesced pings land here, on the callback's path: one Redis command when the ping folds
    into a waiting sweep, and the message itself when it does not. The sweep keeps the shop's spacing when it
    starts (`sweep_shop` in the tasks), not here. A notice from the store (`NOTICES`) that queues a sweep also
    marks the shop as noticed, at `clock()`, until a sweep that started after it finishes. With `waiting`, the
    web process's memory, a ping within `FOLD_WINDOW_S` of Redis's last word that a sweep waits folds into it
    without a round trip.
    """
    scope = Scope(scope or scope_for(cause))
    if waiting is not None:
        if waiting.waiting(shop_id, scope):
            return False
        asked = waiting.clock()
    pending = SWEEP_PENDING_KEY.format(shop_id=shop_id, scope=scope)
    if not redis_client.set(pending, cause, nx=True, ex=SWEEP_PENDING_TTL_S):
        if waiting is not None:
            waiting.heard(shop_id, scope, asked)
        return False
    if cause in NOTICES:
        # Marked before the sweep is sent, so before it can start. A ping that folds into a waiting sweep needs no
        # mark of its own: that sweep starts after it, and the mark made when it was queued stays until it finishes.
        redis_client.zadd(NOTICED_KEY, {str(shop_id): clock()}, gt=True)
    if priority is None:
        celery.send_task(SWEEP_SHOP_TASK, args=(shop_id, cause, str(scope)), priority=sweep_priority(scope))
    else:  # the sweep keeps its priority if it has to wait for its spacing
        celery.send_task(SWEEP_SHOP_TASK, args=(shop_id, cause, str(scope), priority), priority=priority)
    if waiting is not None:  # only once the sweep is on the queue: a ping folded into it has one to wait for
        waiting.heard(shop_id, scope, asked)
    return True


def sweep_due_in(
    redis_client: redis.Redis, shop_id: int, clock: Callable[[], float] = time.time, scope: Scope | str = Scope.FULL
) -> float:
    """Seconds until a sweep of this scope may start: the spacing its kind's last sweep set may have grown since
    this one was queued (a shop's first sweeps find out how much it holds)."""
    at = redis_client.get(SWEEP_NEXT_KEY.format(shop_id=shop_id, listing=_listing(scope)))
    return max(0.0, float(at) - clock()) if at else 0.0


def sweep_waits(redis_client: redis.Redis, shop_id: int, scope: Scope | str, wait_s: float) -> None:
    """The waiting sweep goes on folding pings for as long as it waits, not only for the usual minute."""
    redis_client.expire(SWEEP_PENDING_KEY.format(shop_id=shop_id, scope=scope), int(wait_s) + SWEEP_PENDING_TTL_S)


def sweep_started(
    redis_client: redis.Redis, shop_id: int, clock: Callable[[], float] = time.time, scope: Scope | str = Scope.FULL
) -> float:
    """Pings from now on need a sweep of their own; the next one of this kind keeps its distance from this one,
    by what the last one listed until this one knows better. Returns when it started, once the pings a web
    process may still fold into it (`FOLD_WINDOW_S`) were received."""
    now = clock()
    listing = _listing(scope)
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.delete(SWEEP_PENDING_KEY.format(shop_id=shop_id, scope=scope))
        pipe.get(SWEEP_LISTED_KEY.format(shop_id=shop_id, listing=listing))
        _, listed = pipe.execute()
    folding_until = time.monotonic() + FOLD_WINDOW_S
    spacing = sweep_spacing(listing, int(listed or 0))
    redis_client.set(SWEEP_NEXT_KEY.format(shop_id=shop_id, listing=listing), repr(now + spacing), ex=SWEEP_NEXT_TTL_S)
    time.sleep(max(0.0, folding_until - time.monotonic()))
    return now


def sweep_spacing(scope: Scope | str, listed: int) -> float:
    """How far apart sweeps of this kind start, for a shop whose last one listed `listed` fulfillment orders."""
    if _listing(scope) == Scope.REQUESTS:
        return REQUESTS_SPACING_S if listed <= REQUESTS_UNSPACED_LISTING else listed / SWEEP_POINTS_PER_S
    return max(SWEEP_SPACING_S, listed / SWEEP_POINTS_PER_S)


def sweep_finished(
    redis_client: redis.Redis, shop_id: int, listed: int, started: float | None = None, scope: Scope | str = Scope.FULL
) -> float:
    """Space the shop's next sweep of this kind by how many fulfillment orders this one listed; returns the
    spacing."""
    listing = _listing(scope)
    spacing = sweep_spacing(listing, listed)
    started = time.time() if started is None else started
    with redis_client.pipeline(transaction=False) as pipe:
        pipe.set(SWEEP_NEXT_KEY.format(shop_id=shop_id, listing=listing), repr(started + spacing), ex=SWEEP_NEXT_TTL_S)
        pipe.set(SWEEP_LISTED_KEY.format(shop_id=shop_id, listing=listing), listed, ex=SWEEP_NEXT_TTL_S)
        pipe.execute()
    return spacing


# KEYS: NOTICED_KEY. ARGV: the shop id, when its finished sweep started. The shop leaves unless a notice came after.
_CONFIRM_NOTICE_LUA = """
local at = redis.call('ZSCORE', KEYS[1], ARGV[1])
if at and tonumber(at) <= tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
"""


@cache
def _confirm_notice(redis_client: redis.Redis) -> Any:
    return redis_client.register_script(_CONFIRM_NOTICE_LUA)


def notice_heard(redis_client: redis.Redis, shop_id: int, started: float) -> None:
    """A sweep that listed what waits on us, started at `started`, finished: notices before then are seen to."""
    _confirm_notice(redis_client)(keys=[NOTICED_KEY], args=[str(shop_id), repr(started)])


def noticed_shops(redis_client: redis.Redis, active: set[int]) -> set[int]:
    """The shops with a notice no finished sweep has seen to; shops no longer installed are taken off."""
    noticed = {int(m) for m in redis_client.zrange(NOTICED_KEY, 0, -1)}
    gone = noticed - active
    if gone:
        redis_client.zrem(NOTICED_KEY, *(str(shop_id) for shop_id in gone))
    return noticed & active


# A sweep of a kind that finds another of its kind running on the shop comes back this much later: the running
# one may have listed before the ping that queued it, so it still runs, once that one is done.
SWEEP_BUSY_RETRY_S = 1.0


@contextmanager
def sweep_lock(redis_client: redis.Redis, shop_id: int, scope: Scope | str) -> Iterator[None]:
    """One sweep of each kind at a time per shop (two would list and record the same fulfillment orders);
    raises `Busy` when one runs. A lease, like the fulfillment-order lock."""
    with exclusive(f"sweep:{shop_id}:{_listing(scope)}", client=redis_client):
        yield


# The schedule: beat runs `sweep_due_shops` every SWEEP_TICK_S; each run sweeps the shops whose moment in the
# interval (`fulfillment.sweep.due_between`) fell since the last run, so no tick carries a thousand sweeps.
SWEEP_TICK_S = 2.0
SWEEP_TICK_KEY = "fulfillment:sweep-tick"


def sweep_tick(redis_client: redis.Redis, now: float, longest_s: float) -> float:
    """Record this run of the schedule; returns when the last one ran (one tick ago for the first, and at most
    `longest_s` ago after beat was down a long time: every shop once, then the usual pace)."""
    last = redis_client.getset(SWEEP_TICK_KEY, repr(now))
    if last is None:
        return now - SWEEP_TICK_S
    return min(now, max(float(last), now - longest_s))


INFLIGHT_KEY = "fulfillment:inflight:{shop_id}"  # record id -> when its chain must next be heard of
WAITING_KEY = "fulfillment:waiting:{shop_id}"  # record id -> when it was found due; taken first come, first served
INFLIGHT_TTL_S = 7 * 24 * 3600  # the keys themselves, once a shop falls quiet
INFLIGHT_PER_SHOP = 12
# How long a chain may go unheard of (its next step's delay aside) before it is taken as lost, e.g. with a worker
# that was killed: time in the queue plus one step. The sweep then starts the fulfillment order's work again.
CHAIN_GRACE_S = 60
CHAIN_KEY = "fulfillment:chain:{record_id}"
# A backstop only: a chain's key is deleted when the chain ends (`finish`).
CHAIN_TTL_S = 7 * 24 * 3600

Clock = Callable[[], float]
# Commands of the caller's own, put in a pipeline of the chain's (`ShopQueue.then`, `finished`).
First = Callable[[redis.client.Pipeline], None]


def step_priority(redis_client: redis.Redis, shop_id: int | None) -> int:
    """The priority for the next step of one of the shop's fulfillment orders."""
    if shop_id is not None and redis_client.zcard(WAITING_KEY.format(shop_id=shop_id)):
        return PRIORITY_FLOODED
    return PRIORITY_DEFAULT


def admit(
    redis_client: redis.Redis, shop_id: int, due: list[Due], limit: int = INFLIGHT_PER_SHOP, clock: Clock = time.time
) -> list[int]:
    """The fulfillment orders that may start a chain of steps now.

    What the merchant just changed goes at once (it may supersede a chain waiting on a delay). Other work
    takes a place among the shop's `limit`, or waits its turn: a shop with a backlog of thousands gets that many
    moving at a time, the next one starting as soon as one finishes, so its flood never sits in the queue ahead
    of a quiet shop's work. The store's own rate limit would not let the backlog go faster anyway.
    """
    now = clock()
    running, queued = _running(redis_client, shop_id, now)
    chosen = [d.record_id for d in due if d.urgent]
    waiting = {str(d.record_id): now for d in due if not d.urgent and d.record_id not in running}
    if waiting:
        redis_client.zadd(WAITING_KEY.format(shop_id=shop_id), waiting, nx=True)
    if waiting or queued:  # nobody waits: no pop to make
        chosen += _next_waiting(redis_client, shop_id, limit - len(running), running | set(chosen))
    _mark_inflight(redis_client, shop_id, chosen, now)
    return chosen


def _running(
    redis_client: redis.Redis, shop_id: int, now: float, finished: int | None = None, first: First | None = None
) -> tuple[set[int], int]:
    """The shop's chains still heard of in time (the lost ones, and a `finished` one, leave) and how many
    fulfillment orders wait their turn, in one round trip (with the caller's `first` commands)."""
    inflight = INFLIGHT_KEY.format(shop_id=shop_id)
    with redis_client.pipeline(transaction=False) as pipe:
        if first is not None:
            first(pipe)
        if finished is not None:
            pipe.delete(CHAIN_KEY.format(record_id=finished))
            pipe.zrem(inflight, str(finished))
        pipe.zremrangebyscore(inflight, "-inf", now)  # chains not heard of in time: lost
        pipe.zrange(inflight, 0, -1)
        pipe.zcard(WAITING_KEY.format(shop_id=shop_id))
        *_, members, waiting = pipe.execute()
    return {int(m) for m in members}, waiting


def _next_waiting(redis_client: redis.Redis, shop_id: int, room: int, running: set[int]) -> list[int]:
    key = WAITING_KEY.format(shop_id=shop_id)
    taken: list[int] = []
    while len(taken) < room:
        popped = redis_client.zpopmin(key, room - len(taken))
        if not popped:
            break
        taken += [int(member) for member, _ in popped if int(member) not in running]
    return taken


def _mark_inflight(redis_client: redis.Redis, shop_id: int, record_ids: list[int], now: float) -> None:
    if record_ids:
        key = INFLIGHT_KEY.format(shop_id=shop_id)
        with redis_client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {str(rid): now + CHAIN_GRACE_S for rid in record_ids})
            pipe.expire(key, INFLIGHT_TTL_S)
            pipe.execute()


def start_chain(redis_client: redis.Redis, record_id: int) -> str:
    """A new chain of steps for the fulfillment order; any older chain stops at its next step."""
    token = uuid.uuid4().hex
    redis_client.set(CHAIN_KEY.format(record_id=record_id), token, ex=CHAIN_TTL_S)
    return token


def is_current_chain(redis_client: redis.Redis, record_id: int, token: str | None) -> bool:
    if token is None:
        return True
    current = redis_client.get(CHAIN_KEY.format(record_id=record_id))
    # No record of chains (Redis restarted): let the step run; the per-order lock still keeps it single.
    return current is None or current.decode() == token


def touch(
    redis_client: redis.Redis, shop_id: int, record_id: int, within_s: float = 0.0, clock: Clock = time.time
) -> None:
    """The chain is alive, and its next step is due within `within_s` seconds."""
    deadline = clock() + within_s + CHAIN_GRACE_S
    redis_client.zadd(INFLIGHT_KEY.format(shop_id=shop_id), {str(record_id): deadline})


def finish(
    redis_client: redis.Redis,
    shop_id: int,
    record_id: int,
    limit: int = INFLIGHT_PER_SHOP,
    clock: Clock = time.time,
    first: First | None = None,
) -> list[int]:
    """The chain is done; returns the waiting fulfillment orders that may start a chain in its place."""
    now = clock()
    running, queued = _running(redis_client, shop_id, now, finished=record_id, first=first)
    chosen = _next_waiting(redis_client, shop_id, limit - len(running), running) if queued else []
    _mark_inflight(redis_client, shop_id, chosen, now)
    return chosen


# KEYS: the fulfillment order's chain key, the shop's in-flight set. ARGV: the step's chain token ('' = none: a
# step sent before chains were tracked), the chain's new deadline, the record id. 1 when the chain is current (no
# record of chains counts as current: Redis restarted, and the per-order lock still keeps the step single), and
# then it is heard of.
_CURRENT_AND_TOUCH_LUA = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and current and current ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1
"""


@cache
def _current_and_touch(redis_client: redis.Redis) -> Any:
    # Registered once per connection pool: afterwards one EVALSHA per step.
    return redis_client.register_script(_CURRENT_AND_TOUCH_LUA)


# As above, and then the fulfillment order's lock taken for the step: KEYS also the lock's key, ARGV also the
# lock's token and its lease in milliseconds. 0 when the chain is not current (nothing taken), 1 when the lock is
# taken, 2 when another holds it.
_CURRENT_TOUCH_AND_LOCK_LUA = """
local current = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and current and current ~= ARGV[1] then return 0 end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
if redis.call('SET', KEYS[3], ARGV[4], 'NX', 'PX', ARGV[5]) then return 1 end
return 2
"""


@cache
def _current_touch_and_lock(redis_client: redis.Redis) -> Any:
    return redis_client.register_script(_CURRENT_TOUCH_AND_LOCK_LUA)


# --- one shop's chains ---------------------------------------------------------------------------------------


class ShopQueue:
    """The steps of one shop's fulfillment orders: which may start a chain now, which chain is current, and at
    what priority their steps go. Without a shop (a step sent before shops were tracked) steps go unbounded."""

    def __init__(
        self,
        celery: Celery,
        redis_client: redis.Redis,
        shop_id: int | None,
        limit: int = INFLIGHT_PER_SHOP,
        clock: Clock = time.time,
    ):
        self.celery = celery
        self.redis = redis_client
        self.shop_id = shop_id
        self.limit = limit
        self.clock = clock

    def start(self, due: list[Due], cause: str) -> list[int]:
        """Start a chain for each fulfillment order admitted now (the rest wait their turn); returns them."""
        if self.shop_id is None:
            admitted = [d.record_id for d in due]
        else:
            admitted = admit(self.redis, self.shop_id, due, self.limit, self.clock)
        self._start(admitted, cause)
        return admitted

    def _start(self, record_ids: list[int], cause: str) -> None:
        if not record_ids:
            return
        # The chains' keys and the shop's priority in one round trip.
        tokens = [uuid.uuid4().hex for _ in record_ids]
        with self.redis.pipeline(transaction=False) as pipe:
            for record_id, token in zip(record_ids, tokens, strict=True):
                pipe.set(CHAIN_KEY.format(record_id=record_id), token, ex=CHAIN_TTL_S)
            if self.shop_id is not None:
                pipe.zcard(WAITING_KEY.format(shop_id=self.shop_id))
            answers = pipe.execute()
        priority = PRIORITY_FLOODED if self.shop_id is not None and answers[-1] else PRIORITY_DEFAULT
        for record_id, token in zip(record_ids, tokens, strict=True):
            self._send((record_id, cause, self.shop_id, token), priority=priority)

    def is_current(self, record_id: int, chain: str | None) -> bool:
        """False when a newer chain took over the fulfillment order; else the chain is heard of."""
        if self.shop_id is None:
            return is_current_chain(self.redis, record_id, chain)
        # The check and the touch in one round trip: the touch only for the current chain.
        deadline = self.clock() + CHAIN_GRACE_S
        return bool(
            _current_and_touch(self.redis)(
                keys=[CHAIN_KEY.format(record_id=record_id), INFLIGHT_KEY.format(shop_id=self.shop_id)],
                args=[chain or "", repr(deadline), str(record_id)],
            )
        )

    @contextmanager
    def step(self, record_id: int, chain: str | None) -> Iterator[Held | None]:
        """The fulfillment order's lock for one step of its chain, taken with the chain's check in one round trip:
        yields None (and takes nothing) when a newer chain took over; raises `Busy` when another step holds it.
        The lock held may be let go with the chain's next commands (`then`, `finished`: `first`)."""
        if self.shop_id is None:
            if not is_current_chain(self.redis, record_id, chain):
                yield None
                return
            with fulfillment_order_lock(record_id, redis_client=self.redis) as held:
                yield held
            return
        name = fulfillment_order_lock_name(record_id)
        token = uuid.uuid4().hex
        taken = _current_touch_and_lock(self.redis)(
            keys=[
                CHAIN_KEY.format(record_id=record_id),
                INFLIGHT_KEY.format(shop_id=self.shop_id),
                lock_key(name),
            ],
            args=[chain or "", repr(self.clock() + CHAIN_GRACE_S), str(record_id), token, int(LOCK_LEASE_S * 1000)],
        )
        if taken == 0:
            yield None
            return
        if taken != 1:
            raise Busy(name)
        with exclusive(name, lease_s=LOCK_LEASE_S, client=self.redis, taken=token) as held:
            yield held

    def then(self, record_id: int, cause: str, chain: str | None, delay: float, first: First | None = None) -> None:
        """The chain goes on: its next step in `delay` seconds. `first` puts the caller's own commands (letting
        its lock go, say) in the same round trip, ahead of the chain's and before the next step is sent."""
        priority = PRIORITY_DEFAULT
        if self.shop_id is not None:
            with self.redis.pipeline(transaction=False) as pipe:
                if first is not None:
                    first(pipe)
                deadline = self.clock() + delay + CHAIN_GRACE_S
                pipe.zadd(INFLIGHT_KEY.format(shop_id=self.shop_id), {str(record_id): deadline})
                pipe.zcard(WAITING_KEY.format(shop_id=self.shop_id))
                *_, queued = pipe.execute()
            priority = PRIORITY_FLOODED if queued else PRIORITY_DEFAULT
        elif first is not None:
            with self.redis.pipeline(transaction=False) as pipe:
                first(pipe)
                pipe.execute()
        self._send((record_id, cause, self.shop_id, chain), countdown=delay, priority=priority)

    def _send(self, args: tuple, **options: object) -> None:
        # Through a signature, so a worker (or an eager app) calls its registered task as `apply_async` would.
        self.celery.signature(STEP_TASK, args=args).apply_async(**options)

    def finished(self, record_id: int, first: First | None = None) -> None:
        """The chain is done (its key goes): its place among the shop's chains goes to the next fulfillment order
        waiting. `first` as for `then`."""
        if self.shop_id is None:
            with self.redis.pipeline(transaction=False) as pipe:
                if first is not None:
                    first(pipe)
                pipe.delete(CHAIN_KEY.format(record_id=record_id))
                pipe.execute()
        else:
            chosen = finish(self.redis, self.shop_id, record_id, self.limit, self.clock, first=first)
            self._start(chosen, Cause.POLL)


def request_step(celery: Celery, redis_client: redis.Redis, shop_id: int, record_id: int, cause: str) -> None:
    """Start a new chain of steps for a fulfillment order at once (someone just acted on it); any older chain
    stops at its next step."""
    ShopQueue(celery, redis_client, shop_id).start([Due(record_id, urgent=True)], cause)


@contextmanager
def fulfillment_order_lock(
    record_id: int, wait_s: float = 0.0, redis_client: redis.Redis | None = None
) -> Iterator[None]:
    """One step at a time on a fulfillment order, the worker's or an operator's; raises `Busy` when another
    holds it beyond `wait_s`. A lease, renewed while its holder works (`workers.runtime.exclusive`)."""
    with exclusive(fulfillment_order_lock_name(record_id), wait_s=wait_s, client=redis_client):
        yield


def fulfillment_order_lock_name(record_id: int) -> str:
    return f"fulfillment-order:{record_id}"
