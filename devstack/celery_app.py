"""The app's Celery application for runs that lose a whole host: `celery -A devstack.celery_app worker`.

A worker killed with its host holds its unacknowledged tasks (late acks) until the broker's visibility timeout
hands them to another worker. The app's timeout suits production's longest task; a run of a few minutes that cuts
a host off sets `BROKER_VISIBILITY_TIMEOUT_S` so that the hand-over happens within the run. Everything else is the
app's own configuration.
"""

from __future__ import annotations

import os

from workers.celery_app import celery

_timeout = os.environ.get("BROKER_VISIBILITY_TIMEOUT_S")
if _timeout:
    celery.conf.broker_transport_options = {
        **(celery.conf.broker_transport_options or {}),
        "visibility_timeout": float(_timeout),
    }

__all__ = ["celery"]
