"""Per-shop admission of step chains, against a real Redis: a bounded number moving per shop, the rest waiting
their turn, and a chain that stopped being heard of (its worker was killed) given up on in bounded time."""

import time
import uuid

import pytest
import redis

from fulfillment.sweep import Due, Scope
from workers import queue
from workers.runtime import Busy

REDIS_URL = "redis://127.0.0.1:6379/13"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client():
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    yield client
    client.close()


@pytest.fixture
def shop_id(client):
    # A shop id no other test (or run) uses, and its keys removed afterwards.
    shop_id = uuid.uuid4().int % 10**12
    yield shop_id
    client.delete(
        *(key.format(shop_id=shop_id) for key in (queue.INFLIGHT_KEY, queue.WAITING_KEY)),
        *(
            key.format(shop_id=shop_id, scope=scope, listing=scope)
            for key in (queue.SWEEP_PENDING_KEY, queue.SWEEP_NEXT_KEY, queue.SWEEP_LISTED_KEY)
            for scope in Scope
        ),
    )


@pytest.fixture
def clock():
    return Clock()


def due(*ids: int, urgent: bool = False) -> list[Due]:
    return [Due(i, urgent=urgent) for i in ids]


def test_admission_keeps_a_shop_to_its_limit_and_urgent_changes_go_at_once(client, shop_id, clock):
    assert queue.admit(client, shop_id, due(1, 2, 3), limit=2, clock=clock) == [1, 2]
    assert queue.admit(client, shop_id, due(1, 2, 3), limit=2, clock=clock) == []
    assert queue.admit(client, shop_id, due(9, urgent=True), limit=2, clock=clock) == [9]


def test_a_finished_chain_hands_its_place_to_the_next_waiting_fulfillment_order(client, shop_id, clock):
    queue.admit(client, shop_id, due(1, 2, 3, 4), limit=2, clock=clock)
    # No sweep in between: the backlog moves on as chains finish.
    assert queue.finish(client, shop_id, 1, limit=2, clock=clock) == [3]
    assert queue.finish(client, shop_id, 2, limit=2, clock=clock) == [4]
    assert queue.finish(client, shop_id, 3, limit=2, clock=clock) == []


def test_a_chain_not_heard_of_within_its_grace_is_taken_as_lost_and_admitted_again(client, shop_id, clock):
    assert queue.admit(client, shop_id, due(1), limit=1, clock=clock) == [1]
    clock.now += queue.CHAIN_GRACE_S / 2
    queue.touch(client, shop_id, 1, within_s=0, clock=clock)  # a step started
    clock.now += queue.CHAIN_GRACE_S - 1
    assert queue.admit(client, shop_id, due(1), limit=1, clock=clock) == []
    clock.now += 2  # its worker died: nothing heard since
    assert queue.admit(client, shop_id, due(1), limit=1, clock=clock) == [1]


def test_a_chain_waiting_on_a_delay_is_alive_until_the_delay_and_its_grace_have_passed(client, shop_id, clock):
    queue.admit(client, shop_id, due(1), limit=1, clock=clock)
    queue.touch(client, shop_id, 1, within_s=300, clock=clock)  # next step in five minutes
    clock.now += 300 + queue.CHAIN_GRACE_S - 1
    assert queue.admit(client, shop_id, due(1), limit=1, clock=clock) == []
    clock.now += 2
    assert queue.admit(client, shop_id, due(1), limit=1, clock=clock) == [1]


class FakeCelery:
    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple, int]] = []

    def send_task(self, name, args=(), priority=None):
        self.sent.append((name, args, priority))


class CountingRedis(redis.Redis):
    """A real client that counts its round trips: a command's name, or a pipeline's names as a tuple."""

    commands: list[str | tuple[str, ...]]

    def execute_command(self, *args, **options):
        self.commands.append(args[0])
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        execute = pipe.execute

        def counted(raise_on_error=True):
            self.commands.append(tuple(args[0] for args, _options in pipe.command_stack))
            return execute(raise_on_error)

        pipe.execute = counted
        return pipe


def test_a_folded_ping_costs_one_redis_command_and_pings_fold_into_one_waiting_sweep_per_scope(client, shop_id, clock):
    celery = FakeCelery()
    counting = CountingRedis.from_url(REDIS_URL)
    counting.commands = []
    assert queue.request_sweep(celery, counting, shop_id, "callback", clock=clock)
    assert counting.commands == ["SET", "ZADD"]  # the sweep queued, and the shop marked as noticed
    counting.commands.clear()
    assert not queue.request_sweep(celery, counting, shop_id, "callback", clock=clock)  # folded into it
    assert counting.commands == ["SET"]
    counting.commands.clear()
    assert not queue.request_sweep(celery, counting, shop_id, "poll", clock=clock, scope=Scope.REQUESTS)
    assert counting.commands == ["SET"]  # our own schedule is no notice from the store
    assert not queue.request_sweep(celery, counting, shop_id, "webhook", clock=clock, scope=Scope.REQUESTS)
    # News about work in our hands needs the whole shop listed: a sweep of its own, not folded into the other.
    assert queue.request_sweep(celery, counting, shop_id, "webhook", clock=clock)
    queue.sweep_started(client, shop_id, clock=clock, scope=Scope.REQUESTS)
    assert queue.request_sweep(celery, counting, shop_id, "callback", clock=clock)  # pings after it started
    assert celery.sent == [
        (queue.SWEEP_SHOP_TASK, (shop_id, "callback", "requests"), queue.PRIORITY_DEFAULT),
        (queue.SWEEP_SHOP_TASK, (shop_id, "webhook", "full"), queue.PRIORITY_DEFAULT),
        (queue.SWEEP_SHOP_TASK, (shop_id, "callback", "requests"), queue.PRIORITY_DEFAULT),
    ]
    counting.close()


def test_a_burst_of_pings_folds_on_one_word_from_redis_for_the_fold_window(client, shop_id, clock):
    celery, ticks = FakeCelery(), Clock()
    waiting = queue.WaitingSweeps(clock=ticks)
    counting = CountingRedis.from_url(REDIS_URL)
    counting.commands = []
    assert queue.request_sweep(celery, counting, shop_id, "callback", clock=clock, waiting=waiting)
    assert counting.commands == ["SET", "ZADD"]
    counting.commands.clear()
    ticks.now += queue.FOLD_WINDOW_S / 2
    assert not queue.request_sweep(celery, counting, shop_id, "callback", clock=clock, waiting=waiting)
    assert counting.commands == []  # folded on the word Redis gave with the queued sweep
    ticks.now += queue.FOLD_WINDOW_S / 2
    assert not queue.request_sweep(celery, counting, shop_id, "callback", clock=clock, waiting=waiting)
    assert counting.commands == ["SET"]  # the window, counted from that question, has passed: Redis is asked
    counting.commands.clear()
    # Other scopes and shops are Redis's to answer.
    assert queue.request_sweep(celery, counting, shop_id, "webhook", clock=clock, waiting=waiting)
    assert counting.commands == ["SET", "ZADD"]
    assert len(celery.sent) == 2
    counting.close()


def test_a_ping_whose_sweep_did_not_reach_the_queue_is_not_folded_on_it(client, shop_id, clock):
    class DownCelery(FakeCelery):
        def send_task(self, name, args=(), priority=None):
            raise redis.ConnectionError("queue unavailable")

    waiting = queue.WaitingSweeps(clock=Clock())
    with pytest.raises(redis.ConnectionError):
        queue.request_sweep(DownCelery(), client, shop_id, "callback", clock=clock, waiting=waiting)
    assert not waiting.waiting(shop_id, Scope.REQUESTS)


def test_a_sweep_lists_only_after_the_pings_folded_on_an_earlier_word_were_received(client, shop_id, clock):
    began = time.monotonic()
    queue.sweep_started(client, shop_id, clock=clock, scope=Scope.REQUESTS)
    assert time.monotonic() - began >= queue.FOLD_WINDOW_S
    assert not client.exists(queue.SWEEP_PENDING_KEY.format(shop_id=shop_id, scope=Scope.REQUESTS))


def test_a_scheduled_sweep_goes_at_its_priority_and_keeps_it(client, shop_id, clock):
    celery = FakeCelery()
    assert queue.request_sweep(celery, client, shop_id, "poll", clock=clock, scope=Scope.IDLE, priority=9)
    assert celery.sent == [(queue.SWEEP_SHOP_TASK, (shop_id, "poll", "idle", 9), 9)]
    assert queue.sweep_priority(Scope.IDLE, scheduled=True) == queue.PRIORITY_IDLE
    assert queue.sweep_priority(Scope.FULL, scheduled=True) == queue.PRIORITY_SCHEDULED
    assert queue.sweep_priority(Scope.REQUESTS) == queue.PRIORITY_DEFAULT


def test_a_ping_about_a_request_is_swept_without_waiting_for_the_full_sweeps_spacing(client, shop_id, clock):
    queue.sweep_started(client, shop_id, clock=clock, scope=Scope.FULL)
    queue.sweep_finished(client, shop_id, listed=20, started=clock.now, scope=Scope.FULL)
    clock.now += 0.25
    assert queue.sweep_due_in(client, shop_id, clock=clock, scope=Scope.FULL) == pytest.approx(20 / 5 - 0.25)
    assert queue.sweep_due_in(client, shop_id, clock=clock, scope=Scope.REQUESTS) == 0
    # A full sweep starting keeps the next one as far off as the last one's listing asks, until it knows better.
    clock.now += 4
    queue.sweep_started(client, shop_id, clock=clock, scope=Scope.IDLE)
    clock.now += 0.5
    assert queue.sweep_due_in(client, shop_id, clock=clock, scope=Scope.FULL) == pytest.approx(20 / 5 - 0.5)


def test_a_shop_with_many_waiting_requests_is_swept_less_often(client, shop_id, clock):
    started = queue.sweep_started(client, shop_id, clock=clock, scope=Scope.REQUESTS)
    # 600 listed: about 600 points a sweep, so sweeps start 600 / SWEEP_POINTS_PER_S seconds apart.
    spacing = queue.sweep_finished(client, shop_id, listed=600, started=started, scope=Scope.REQUESTS)
    assert spacing == pytest.approx(600 / queue.SWEEP_POINTS_PER_S)
    clock.now += 10
    assert queue.sweep_due_in(client, shop_id, clock=clock, scope=Scope.REQUESTS) == pytest.approx(spacing - 10)
    # The waiting sweep keeps folding pings for as long as it waits, not only for the usual minute.
    assert queue.request_sweep(FakeCelery(), client, shop_id, "callback", clock=clock)
    queue.sweep_waits(client, shop_id, Scope.REQUESTS, spacing - 10)
    ttl = client.ttl(queue.SWEEP_PENDING_KEY.format(shop_id=shop_id, scope=Scope.REQUESTS))
    assert ttl > spacing - 10


def test_a_small_shop_keeps_the_short_spacing(client, shop_id, clock):
    assert queue.sweep_finished(client, shop_id, listed=3, started=clock.now) == queue.SWEEP_SPACING_S
    # A ping's sweep that found a few requests waiting lets the next ping's sweep start at once.
    assert queue.sweep_finished(client, shop_id, listed=queue.REQUESTS_UNSPACED_LISTING, scope=Scope.REQUESTS) == 0


def test_a_queued_sweep_learns_of_a_spacing_set_after_it_was_queued(client, shop_id, clock):
    assert queue.sweep_due_in(client, shop_id, clock=clock) == 0  # never swept
    started = queue.sweep_started(client, shop_id, clock=clock)
    clock.now += 2
    assert queue.sweep_due_in(client, shop_id, clock=clock) == 0  # the short spacing has passed
    queue.sweep_finished(client, shop_id, listed=100, started=started)  # that sweep found a big shop
    assert queue.sweep_due_in(client, shop_id, clock=clock) == pytest.approx(100 / queue.SWEEP_POINTS_PER_S - 2)


def test_the_schedule_picks_up_where_its_last_tick_left_off(client):
    client.delete(queue.SWEEP_TICK_KEY)
    try:
        assert queue.sweep_tick(client, 1000.0, longest_s=300) == 1000.0 - queue.SWEEP_TICK_S  # the first tick
        assert queue.sweep_tick(client, 1002.5, longest_s=300) == 1000.0
        # Beat was down an hour: every shop once (the longest interval), not an hour's worth of sweeps.
        assert queue.sweep_tick(client, 4602.5, longest_s=300) == 4302.5
    finally:
        client.delete(queue.SWEEP_TICK_KEY)


class FakeSignatures:
    """Stands in for Celery where steps are sent as signatures."""

    def __init__(self) -> None:
        self.steps: list[tuple[tuple, dict]] = []

    def signature(self, name, args=()):
        assert name == queue.STEP_TASK
        steps = self.steps

        class Signature:
            def apply_async(self, **options):
                steps.append((args, options))

        return Signature()


def test_a_step_an_operator_asks_for_joins_the_shops_chains_and_supersedes_the_old_chain(client, shop_id, clock):
    celery = FakeSignatures()
    old = queue.start_chain(client, 5)
    queue.request_step(celery, client, shop_id, 5, "operator")
    [(args, options)] = celery.steps
    record_id, cause, sent_shop, token = args
    assert (record_id, cause, sent_shop) == (5, "operator", shop_id)
    assert options == {"priority": queue.PRIORITY_DEFAULT}
    chains = queue.ShopQueue(celery, client, shop_id, clock=clock)
    assert chains.is_current(5, token) and not chains.is_current(5, old)
    assert [int(m) for m in client.zrange(queue.INFLIGHT_KEY.format(shop_id=shop_id), 0, -1)] == [5]


def test_a_step_takes_its_lock_with_the_chains_check_and_a_stale_chain_takes_nothing(client, shop_id, clock):
    record_id = uuid.uuid4().int % 10**9  # a lock and chain no other test (or run) uses
    chains = queue.ShopQueue(FakeSignatures(), client, shop_id, clock=clock)
    old = queue.start_chain(client, record_id)
    token = queue.start_chain(client, record_id)
    lock = f"fulfillment:lock:fulfillment-order:{record_id}"
    try:
        with chains.step(record_id, old) as current:
            assert not current and not client.exists(lock)  # a newer chain took over
        with chains.step(record_id, token) as current:
            assert current and client.exists(lock) and 0 < client.pttl(lock) <= 30_000
            assert client.zscore(queue.INFLIGHT_KEY.format(shop_id=shop_id), str(record_id)) is not None
            with pytest.raises(Busy), chains.step(record_id, token):
                pass  # another copy of the step waits its turn
            with pytest.raises(Busy), queue.fulfillment_order_lock(record_id, redis_client=client):
                pass  # so does an operator's action
        assert not client.exists(lock)
        with (
            queue.fulfillment_order_lock(record_id, redis_client=client),
            pytest.raises(Busy),
            chains.step(record_id, token),
        ):
            pass
        celery = FakeSignatures()
        chains = queue.ShopQueue(celery, client, shop_id, clock=clock)
        with chains.step(record_id, token) as held:
            sent = []
            real = client.execute_command
            client.execute_command = lambda *a, **kw: sent.append(a[0]) or real(*a, **kw)
            try:
                chains.then(record_id, "worker", token, 5.0, first=held.release_in)
            finally:
                del client.execute_command
            assert not client.exists(lock)  # let go with the chain's commands, before the next step went
            assert sent == [] and [args for args, _ in celery.steps] == [(record_id, "worker", shop_id, token)]
        assert not client.exists(lock)
    finally:
        client.delete(lock, queue.CHAIN_KEY.format(record_id=record_id))


def test_a_shops_queue_starts_the_next_waiting_chain_with_a_token_when_one_finishes(client, shop_id, clock):
    celery = FakeSignatures()
    chains = queue.ShopQueue(celery, client, shop_id, limit=1, clock=clock)
    assert chains.start(due(1, 2), "poll") == [1]
    chains.then(1, "worker", "token-1", 30.0)
    assert celery.steps[-1] == (
        (1, "worker", shop_id, "token-1"),
        {"countdown": 30.0, "priority": queue.PRIORITY_FLOODED},
    )
    chains.finished(1)
    assert [args[0] for args, _ in celery.steps] == [1, 1, 2]


def test_a_chain_that_ends_leaves_no_key_behind(client, shop_id, clock):
    celery = FakeSignatures()
    chains = queue.ShopQueue(celery, client, shop_id, clock=clock)
    chains.start(due(41), "poll")
    key = queue.CHAIN_KEY.format(record_id=41)
    assert client.exists(key)
    chains.finished(41)
    assert not client.exists(key)
    unbounded = queue.ShopQueue(celery, client, None, clock=clock)
    unbounded.start(due(42), "poll")
    unbounded.finished(42)
    assert not client.exists(queue.CHAIN_KEY.format(record_id=42))


def test_one_sweep_of_a_kind_runs_on_a_shop_at_a_time(client, shop_id):
    with queue.sweep_lock(client, shop_id, Scope.REQUESTS):
        with pytest.raises(Busy), queue.sweep_lock(client, shop_id, Scope.REQUESTS):
            pass
        with queue.sweep_lock(client, shop_id, Scope.FULL):  # the other kind lists other things
            pass
    with queue.sweep_lock(client, shop_id, Scope.REQUESTS):
        pass


def test_a_notice_keeps_its_shop_marked_until_a_sweep_that_started_after_it_finishes(client, shop_id, clock):
    celery = FakeCelery()
    member = str(shop_id)
    try:
        queue.request_sweep(celery, client, shop_id, "callback", clock=clock)
        assert queue.noticed_shops(client, {shop_id}) == {shop_id}
        started = queue.sweep_started(client, shop_id, clock=clock, scope=Scope.REQUESTS)
        clock.now += 1
        queue.request_sweep(celery, client, shop_id, "webhook", clock=clock, scope=Scope.REQUESTS)  # after it
        queue.notice_heard(client, shop_id, started)
        assert queue.noticed_shops(client, {shop_id}) == {shop_id}  # the later notice is not seen to yet
        clock.now += 1
        queue.notice_heard(client, shop_id, queue.sweep_started(client, shop_id, clock=clock, scope=Scope.REQUESTS))
        assert queue.noticed_shops(client, {shop_id}) == set()
        # A sweep lost with its worker never finishes: the shop stays marked; our own schedule marks nothing.
        queue.request_sweep(celery, client, shop_id, "callback", clock=clock)
        queue.request_sweep(celery, client, shop_id + 1, "poll", clock=clock, scope=Scope.IDLE)
        assert queue.noticed_shops(client, {shop_id, shop_id + 1}) == {shop_id}
        # A shop no longer installed is taken off.
        assert queue.noticed_shops(client, set()) == set()
        assert client.zscore(queue.NOTICED_KEY, member) is None
    finally:
        client.zrem(queue.NOTICED_KEY, member)
        client.delete(*(queue.SWEEP_PENDING_KEY.format(shop_id=shop_id + 1, scope=scope) for scope in Scope))
