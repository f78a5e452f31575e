"""The broker transport: a worker that loses Redis while holding unacknowledged messages must live on."""

import uuid

import kombu
import pytest
import redis

from workers.broker import TRANSPORT

REDIS_URL = "redis://127.0.0.1:6379/13"


@pytest.fixture
def broker_url():
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip(f"no Redis at {REDIS_URL}")
    return REDIS_URL


def lost_broker(*_args, **_kwargs):
    raise redis.exceptions.ConnectionError("Connection closed by server.")


def test_a_worker_losing_the_broker_with_unacked_messages_sees_only_connection_errors(broker_url):
    queue = kombu.Queue(f"test-broker-{uuid.uuid4().hex}", auto_delete=True)
    connection = kombu.Connection(broker_url, transport=TRANSPORT)
    try:
        with connection.Producer() as producer:
            producer.publish({"n": 1}, routing_key=queue.name, declare=[queue])
        channel = connection.default_channel
        message = None
        for _ in range(50):
            message = queue(channel).get(no_ack=False)
            if message is not None:
                break
        assert message is not None  # delivered, never acknowledged: a late-ack worker's usual state
        # The broker goes away while the worker waits on it: the first close cannot even finish its read.
        channel._in_poll = True
        channel._brpop_read = lost_broker
        # What the worker does then: collect (which detaches the transport), then close once more.
        connection.collect()
        channel._in_poll = False
        with kombu.common.ignore_errors(connection):
            connection.close()
    finally:
        redis.Redis.from_url(broker_url).delete(queue.name)
