"""The several-host harness's own rules: which host runs what, which namespaces are an earlier run's leftovers, and
the scale bench's orders each fitting one parcel (so that one fulfillment per fulfillment order is the check)."""

from __future__ import annotations

import random

from bench.scale import MAX_UNITS, _order_items
from devstack.hosts import Layout, stale


def test_a_host_running_several_parts_is_one_host_and_beat_runs_on_the_first_worker_host():
    layout = Layout(db="hub", sandbox="hub", web="hub", workers=("worker-1", "worker-2"))
    assert layout.hosts == ["hub", "worker-1", "worker-2"]
    assert layout.beat == "worker-1"
    assert Layout().hosts == ["db", "store", "web", "worker-1", "worker-2"]


def test_only_namespaces_of_runs_whose_process_is_gone_are_stale():
    names = ["fs100n1-db", "fs100n1-switch", "fs200n2-web", "docker-ns", "fsx-db", "fs300-db"]
    assert stale(names, alive=lambda pid: pid == 200) == ["fs100n1-db", "fs100n1-switch"]
    assert stale(["fs100n1-pg-abc123"], alive=lambda pid: False) == ["fs100n1-pg-abc123"]


def test_every_scale_order_fits_one_parcel():
    rng = random.Random(3)
    for _ in range(500):
        items = _order_items(rng)
        assert 1 <= len(items) <= 2
        assert all(quantity >= 1 for quantity in items.values())
        assert sum(items.values()) <= MAX_UNITS
