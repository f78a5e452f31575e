"""A small chaos run in the suite: the same scenario as `bench/chaos.py` (store faults on, merchants changing their
minds, a worker killed with SIGKILL, Redis restarted empty), fewer orders. It holds us to the three zeros."""

from __future__ import annotations

from bench.chaos import Chaos, run


def test_store_faults_crashes_and_a_redis_restart_lose_nothing_and_ship_nothing_twice(make_database):
    result = run(
        orders=30,
        shops=2,
        rate=3.0,
        chaos=Chaos(kills=(0.25, 0.6), redis_restarts=(0.45,)),
        timeout_s=420,
        seed=7,
        database_url=make_database(),
    )
    problems = "\n".join(result.problems)
    assert result.lost == 0, problems
    assert result.doubled == 0, problems
    assert result.wrong == 0, problems
    assert sum(result.counts.values()) == 30
