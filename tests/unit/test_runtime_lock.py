"""One worker at a time per fulfillment order: the lock is a lease that lives while its holder works, and
lapses soon after the holder dies (a killed worker must not block a fulfillment order for minutes)."""

import time
import uuid

import pytest
import redis

from workers import runtime

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def client(monkeypatch):
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    monkeypatch.setattr(runtime, "redis_client", lambda: client)
    yield client
    client.close()


def test_a_working_holder_keeps_its_lease_beyond_its_length(client):
    name = f"test-{uuid.uuid4().hex}"
    with runtime.exclusive(name, lease_s=0.6):
        time.sleep(1.5)
        with pytest.raises(runtime.Busy), runtime.exclusive(name, lease_s=0.6):
            pass
    with runtime.exclusive(name, lease_s=0.6):
        pass


def test_a_dead_holders_lease_lapses_after_its_length(client):
    name = f"test-{uuid.uuid4().hex}"
    # What a killed worker leaves behind: the lock, and nobody renewing it.
    client.lock(f"fulfillment:lock:{name}", timeout=0.6).acquire(blocking=False)
    with pytest.raises(runtime.Busy), runtime.exclusive(name, lease_s=0.6):
        pass
    time.sleep(0.8)
    with runtime.exclusive(name, lease_s=0.6):
        pass
