"""A host lost in the suite: the scenario of `bench/scale.py`, small. Three hosts made of network namespaces (one
for PostgreSQL, Redis, the store and the web app; two with a Celery worker each, beat on the first), 20 shops, a
few of them busy; mid-run the second worker host is cut off (link down, processes SIGKILLed) and later restored.
Every order still ships, once, with what was ordered."""

from __future__ import annotations

import pytest

from bench.scale import run
from devstack.hosts import Layout, can_make_namespaces


@pytest.fixture
def namespace_hosts() -> None:
    reason = can_make_namespaces()
    if reason is not None:
        pytest.skip(f"cannot make network namespaces here ({reason}); the host-loss test needs them")


def test_a_worker_host_lost_mid_run_loses_no_order_and_ships_none_twice(namespace_hosts):
    result = run(
        shops=20,
        flooded=2,
        active=4,
        rate=1.0,
        duration_s=30,
        cut_at=0.2,
        down_s=10,
        visibility_timeout_s=10,
        settle_timeout_s=240,
        layout=Layout(db="hub", sandbox="hub", web="hub", workers=("worker-1", "worker-2")),
        concurrency=2,
        # A shop whose callback's sweep died with the host is swept at the pace of shops with open work until a
        # sweep of it finishes (`workers.queue.NOTICED_KEY`), not at the idle shops' 300 s: nothing here shortens it.
        settings={"PICK_DELAY_S": "0.2", "PACK_DELAY_S": "0.2"},
    )
    problems = "\n".join(result.problems)
    assert result.hosts == 3
    assert result.orders == 30
    assert result.lost == 0, problems
    assert result.doubled == 0, problems
    assert result.wrong == 0, problems
