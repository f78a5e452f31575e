"""The Redis broker transport, made to survive Redis going away under a running worker.

With celery/kombu 5.7, a worker that loses its broker while holding unacknowledged messages (with late acks it
nearly always holds some) closes its connection twice: the second close tries to restore those messages through
a transport already detached from its connection and dies with `AttributeError: 'NoneType' object has no
attribute 'hostname'`, which the worker reports as an unrecoverable error and exits. Here the detached transport
says what it is, a connection error, which the closing code already ignores; the worker then reconnects.
Work whose messages were lost with the broker is found again by the next sweep.
"""

from __future__ import annotations

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    def _connparams(self, asynchronous: bool = False) -> dict:
        if self.connection.client is None:
            raise redis.exceptions.ConnectionError("the broker connection is closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(kombu_redis.Transport):
    Channel = Channel


TRANSPORT = f"{__name__}:Transport"
