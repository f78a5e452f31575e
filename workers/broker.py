"""The Redis broker transport, made to survive Redis going away under a running worker.

With celery/kombu 5.7, a worker that loses its broker while holding unacknowledged messages (with late acks it
nearly always holds some) closes its connection twice: the second close tries to restore those messages through
a transport already detached from its connection and dies with `AttributeError: 'NoneType' object has no
attribute 'hostname'`, which the worker reports as an unrecoverable error and exits. Here the detached transport
says what it is, a connection error, which the closing code already ignores; the worker then reconnects.
Work whose messages were lost with the broker is found again by the next sweep.

It also keeps one Redis client per connection pool for sending and acknowledging, where kombu makes one a message.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)

    def _create_client(self, asynchronous: bool = False) -> redis.Redis:
        # kombu makes a client for every message it sends and every acknowledgement. A client is only a handle on
        # the channel's pool, yet making one copies its whole table of reply parsers: one per pool serves them all
        # (a new pool, after the connection was lost, gets a new one).
        if asynchronous:
            return super()._create_client(asynchronous=True)
        pool = self.pool
        client = self.__dict__.get("_pooled_client")
        if client is None or client.connection_pool is not pool:
            client = self._pooled_client = super()._create_client()
        return client


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
