"""The per-shop cost budget: the in-process one on a fake clock, the Redis one against a real Redis."""

import threading
import time
import uuid

import pytest
import redis

from fulfillment.store.errors import Throttled
from fulfillment.store.throttle import (
    BudgetMetrics,
    CostBudget,
    LocalCostBudget,
    RedisCostBudget,
    ThrottleStatus,
    patience,
)

SHOP = "acme.myshopify.com"
OTHER = "other.myshopify.com"
REDIS_URL = "redis://127.0.0.1:6379/13"


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time():
    return FakeTime()


@pytest.fixture
def local(fake_time):
    return LocalCostBudget(clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)


def test_throttle_status_reads_the_store_shape():
    status = ThrottleStatus.from_response(
        {"maximumAvailable": 2000.0, "currentlyAvailable": 1989, "restoreRate": 100.0}
    )
    assert status == ThrottleStatus(2000.0, 1989.0, 100.0)


def test_local_budget_satisfies_the_protocol():
    assert isinstance(LocalCostBudget(), CostBudget)


# --- LocalCostBudget ----------------------------------------------------------------------------------------


def test_local_starts_with_a_conservative_full_bucket(local, fake_time):
    assert local.available(SHOP) == 1000
    assert local.acquire(SHOP, 600) == 0.0
    assert local.available(SHOP) == 400
    assert fake_time.sleeps == []


def test_local_waits_exactly_for_the_deficit_to_refill(local, fake_time):
    local.acquire(SHOP, 600)
    # 400 left, 600 wanted: 200 short at the default 50 points/s
    assert local.acquire(SHOP, 600) == pytest.approx(4.0)
    assert fake_time.sleeps == [pytest.approx(4.0)]
    assert local.available(SHOP) == pytest.approx(0.0)
    assert local.metrics(SHOP) == BudgetMetrics(0.0, 1, pytest.approx(4.0))


def test_local_refills_over_time_up_to_the_maximum(local, fake_time):
    local.acquire(SHOP, 1000)
    fake_time.now += 3
    assert local.available(SHOP) == pytest.approx(150)
    fake_time.now += 3600
    assert local.available(SHOP) == pytest.approx(1000)


def test_local_learns_the_real_bucket_from_the_store(local, fake_time):
    local.acquire(SHOP, 100)
    local.update(SHOP, ThrottleStatus(2000, 1990, 100), actual_cost=10)
    # Never above what we had reserved for (900), even though the store reports more.
    assert local.available(SHOP) == 900
    fake_time.now += 20
    assert local.available(SHOP) == 2000  # refills at the learned rate to the learned maximum
    assert local.metrics(SHOP).cost_spent == 10


def test_local_gives_back_what_a_request_reserved_but_did_not_spend(local, fake_time):
    # A read reserves its requested cost (every page full); the store charges what it really returned.
    local.acquire(SHOP, 242)
    local.update(SHOP, ThrottleStatus(2000, 1986, 100), actual_cost=14, reserved=242)
    assert local.available(SHOP) == pytest.approx(1000 - 14)
    assert local.metrics(SHOP).cost_spent == 14


def test_local_with_a_max_wait_refuses_to_queue_long_behind_others_and_keeps_nothing(fake_time):
    # Sleeps do not move the clock here: the requests that reserved points are still waiting for them.
    budget = LocalCostBudget(clock=fake_time.clock, sleep=lambda _s: None, jitter=0.0, max_wait=1.0)
    budget.acquire(SHOP, 1000)  # the bucket is empty
    # The refill of its own cost is always waited for: 100 short at 50/s is 2 s, with nobody ahead.
    assert budget.acquire(SHOP, 100) == pytest.approx(2.0)
    # Now 100 points are promised ahead of the next request: 2 s of queue, past the limit.
    with pytest.raises(Throttled) as refused:
        budget.acquire(SHOP, 10)
    assert refused.value.retry_after == pytest.approx(2.2)
    assert budget.available(SHOP) == pytest.approx(-100)  # nothing more was taken
    fake_time.now += 1.5  # 75 points back: 25 ahead, half a second of queue
    assert budget.acquire(SHOP, 10) == pytest.approx(0.7)


def test_patience_lets_work_that_pays_as_it_goes_queue_longer(fake_time):
    budget = LocalCostBudget(clock=fake_time.clock, sleep=lambda _s: None, jitter=0.0, max_wait=1.0)
    budget.acquire(SHOP, 1000)
    budget.acquire(SHOP, 100)  # 2 s of queue ahead of anyone else now
    with patience(10.0):
        assert budget.acquire(SHOP, 10) == pytest.approx(2.2)
    with pytest.raises(Throttled):
        budget.acquire(SHOP, 10)  # outside, the budget's own limit again


def test_local_adopts_a_smaller_store_figure(local, fake_time):
    # A development store with a tiny bucket, or another consumer we do not see.
    local.update(SHOP, ThrottleStatus(100, 30, 10), actual_cost=70)
    assert local.available(SHOP) == 30
    assert local.acquire(SHOP, 50) == pytest.approx(2.0)  # 20 short at 10/s


def test_local_clamps_a_cost_above_the_bucket_size(local, fake_time):
    local.update(SHOP, ThrottleStatus(100, 100, 10), actual_cost=0)
    # Asking for 500 of a 100-point bucket would otherwise wait forever.
    assert local.acquire(SHOP, 500) == 0.0
    assert local.available(SHOP) == 0


def test_local_shops_are_independent(local):
    local.acquire(SHOP, 1000)
    assert local.acquire(OTHER, 1000) == 0.0


def test_local_jitter_stretches_waits():
    fake = FakeTime()
    budget = LocalCostBudget(clock=fake.clock, sleep=fake.sleep, jitter=0.5, rng=lambda: 1.0)
    budget.acquire(SHOP, 1000)
    assert budget.acquire(SHOP, 100) == pytest.approx(2.0 * 1.5)


def test_local_waiters_queue_instead_of_all_waking_at_once(local, fake_time):
    local.acquire(SHOP, 1000)
    # Each reservation takes its points at once, so the second waits behind the first.
    assert local.acquire(SHOP, 100) == pytest.approx(2.0)
    fake_time.now -= 2.0  # as if the second caller arrived while the first was still asleep
    assert local.acquire(SHOP, 100) == pytest.approx(4.0)


def test_local_is_thread_safe_never_overspending():
    budget = LocalCostBudget(default_maximum=100, default_restore_rate=1e-9, jitter=0.0, sleep=lambda s: None)
    granted_without_wait = []

    def worker():
        for _ in range(50):
            if budget.acquire(SHOP, 1) == 0.0:
                granted_without_wait.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted_without_wait) == 100


# --- RedisCostBudget ----------------------------------------------------------------------------------------


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    client.close()


@pytest.fixture
def prefix(redis_client):
    prefix = f"test-store-budget-{uuid.uuid4().hex}"
    yield prefix
    keys = list(redis_client.scan_iter(match=f"{prefix}:*"))
    if keys:
        redis_client.delete(*keys)


def test_redis_budget_satisfies_the_protocol(redis_client, prefix):
    assert isinstance(RedisCostBudget(redis_client, prefix), CostBudget)


def test_redis_keeps_one_bucket_per_shop_and_waits_for_the_deficit(redis_client, prefix, fake_time):
    budget = RedisCostBudget(redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    assert budget.acquire(SHOP, 600) == 0.0
    assert budget.available(SHOP) == pytest.approx(400)
    assert budget.acquire(SHOP, 600) == pytest.approx(4.0)
    assert budget.acquire(OTHER, 1000) == 0.0
    assert budget.metrics(SHOP) == BudgetMetrics(0.0, 1, pytest.approx(4.0))
    assert redis_client.ttl(f"{prefix}:{SHOP}") > 0


def test_redis_budget_is_shared_between_instances(redis_client, prefix, fake_time):
    # Two instances stand for two worker processes.
    a = RedisCostBudget(redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    b = RedisCostBudget(redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    assert a.acquire(SHOP, 700) == 0.0
    assert b.acquire(SHOP, 700) == pytest.approx(400 / 50)


def test_redis_learns_from_the_store_and_counts_cost(redis_client, prefix, fake_time):
    budget = RedisCostBudget(redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    budget.acquire(SHOP, 100)
    budget.update(SHOP, ThrottleStatus(2000, 1990, 100), actual_cost=12)
    budget.update(SHOP, ThrottleStatus(2000, 1990, 100), actual_cost=8)
    assert budget.available(SHOP) == pytest.approx(900)
    fake_time.now += 20
    assert budget.acquire(SHOP, 2000) == 0.0  # refilled at the learned 100/s to the learned 2000
    assert budget.metrics(SHOP).cost_spent == pytest.approx(20)
    budget.update(SHOP, ThrottleStatus(50, 5, 5), actual_cost=0)
    assert budget.available(SHOP) == pytest.approx(0)  # min(store's 5, our 0 after the big reservation)
    assert budget.acquire(SHOP, 10) == pytest.approx(2.0)


def test_redis_updates_deferred_to_the_next_acquire_end_where_updates_sent_at_once_do(
    redis_client, prefix, fake_time, monkeypatch
):
    at_once = RedisCostBudget(redis_client, prefix + "a", clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    deferred = RedisCostBudget(
        redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0, defer_updates=True
    )
    sent = []
    real = redis_client.execute_command
    monkeypatch.setattr(redis_client, "execute_command", lambda *a, **kw: sent.append(a[0]) or real(*a, **kw))

    def both(call):
        return call(at_once), call(deferred)

    try:
        for _ in range(2):  # Redis learns every script once
            deferred.update("warm-up", ThrottleStatus(2000, 1990, 100), actual_cost=0)
            deferred.acquire("warm-up", 1)
        assert both(lambda b: b.acquire(SHOP, 100)) == (0.0, 0.0)
        sent.clear()
        both(lambda b: b.update(SHOP, ThrottleStatus(2000, 1990, 100), actual_cost=12, reserved=100))
        both(lambda b: b.update(OTHER, ThrottleStatus(2000, 1990, 100), actual_cost=8))
        assert sent == ["EVALSHA", "EVALSHA"]  # the deferring budget sent nothing yet
        assert deferred.available(SHOP) == pytest.approx(900)  # what it reserved, not yet given back
        sent.clear()
        fake_time.now += 20
        first, second = both(lambda b: b.acquire(SHOP, 2000))
        assert first == second == 0.0
        assert sent == ["EVALSHA", "EVALSHA"]  # the deferring budget's two updates went with its acquire
        both(lambda b: b.update(SHOP, ThrottleStatus(50, 5, 5), actual_cost=0))
        deferred.settle()
        deferred.settle()  # nothing left: no round trip
        assert sent[-1] == "EVALSHA" and len(sent) == 3
        for shop in (SHOP, OTHER):
            assert deferred.available(shop) == pytest.approx(at_once.available(shop))
            assert deferred.metrics(shop) == at_once.metrics(shop)
        assert deferred.acquire(SHOP, 10) == pytest.approx(2.0)
    finally:
        keys = list(redis_client.scan_iter(match=f"{prefix}a:*"))
        if keys:
            redis_client.delete(*keys)


def test_redis_gives_back_what_a_request_reserved_but_did_not_spend(redis_client, prefix, fake_time):
    budget = RedisCostBudget(redis_client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    budget.acquire(SHOP, 242)
    budget.update(SHOP, ThrottleStatus(2000, 1986, 100), actual_cost=14, reserved=242)
    assert budget.available(SHOP) == pytest.approx(1000 - 14)


def test_redis_with_a_max_wait_refuses_to_queue_long_behind_others_and_keeps_nothing(redis_client, prefix, fake_time):
    budget = RedisCostBudget(
        redis_client, prefix, clock=fake_time.clock, sleep=lambda _s: None, jitter=0.0, max_wait=1.0
    )
    budget.acquire(SHOP, 1000)
    assert budget.acquire(SHOP, 100) == pytest.approx(2.0)  # its own refill, nobody ahead
    with pytest.raises(Throttled) as refused:
        budget.acquire(SHOP, 10)  # 100 points promised ahead: 2 s of queue
    assert refused.value.retry_after == pytest.approx(2.2)
    assert budget.available(SHOP) == pytest.approx(-100)
    fake_time.now += 1.5
    assert budget.acquire(SHOP, 10) == pytest.approx(0.7)


def test_redis_budget_honours_patience(redis_client, prefix, fake_time):
    budget = RedisCostBudget(
        redis_client, prefix, clock=fake_time.clock, sleep=lambda _s: None, jitter=0.0, max_wait=1.0
    )
    budget.acquire(SHOP, 1000)
    budget.acquire(SHOP, 100)
    with patience(10.0):
        assert budget.acquire(SHOP, 10) == pytest.approx(2.2)
    with pytest.raises(Throttled):
        budget.acquire(SHOP, 10)


def test_redis_uses_server_time_by_default(redis_client, prefix):
    # A slow refill (5 short at 20/s: about 0.25 s), so a busy machine's pause between the calls still leaves a wait.
    budget = RedisCostBudget(redis_client, prefix, default_maximum=10, default_restore_rate=20, jitter=0.0)
    assert budget.acquire(SHOP, 10) == 0.0
    started = time.monotonic()
    waited = budget.acquire(SHOP, 5)
    assert 0 < waited <= 0.25
    assert time.monotonic() - started >= waited
    assert budget.metrics(SHOP).throttle_waits == 1


def test_redis_workers_together_never_overspend(redis_client, prefix):
    # A bucket that essentially never refills: exactly its size may be granted without waiting.
    granted_without_wait = []

    def worker():
        budget = RedisCostBudget(
            redis.Redis.from_url(REDIS_URL),
            prefix,
            default_maximum=100,
            default_restore_rate=1e-6,
            jitter=0.0,
            sleep=lambda s: None,
        )
        for _ in range(40):
            if budget.acquire(SHOP, 1) == 0.0:
                granted_without_wait.append(1)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted_without_wait) == 100


def test_redis_works_with_decoded_responses(prefix, fake_time):
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    budget = RedisCostBudget(client, prefix, clock=fake_time.clock, sleep=fake_time.sleep, jitter=0.0)
    budget.update(SHOP, ThrottleStatus(1000, 900, 50), actual_cost=3)
    budget.acquire(SHOP, 1000)
    assert budget.metrics(SHOP) == BudgetMetrics(3.0, 1, pytest.approx(2.0))
