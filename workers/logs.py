"""Worker and beat logs: JSON lines (fulfillment.logs) in place of Celery's own set-up, each task's lines marked
with its task id and name."""

from __future__ import annotations

from celery.signals import setup_logging, task_postrun, task_prerun

from fulfillment import logs

_open: dict[str, object] = {}  # task id -> what unbinds its fields


def _configure(**_kwargs) -> None:
    logs.configure()


def _task_started(task_id=None, task=None, **_kwargs) -> None:
    _open[task_id] = logs.bind(task_id=task_id, task=getattr(task, "name", None))


def _task_ended(task_id=None, **_kwargs) -> None:
    token = _open.pop(task_id, None)
    if token is not None:
        logs.unbind(token)


def connect() -> None:
    """Connecting again is a no-op. A receiver of `setup_logging` keeps Celery from configuring logging itself."""
    setup_logging.connect(_configure, weak=False, dispatch_uid="fulfillment.logs.setup")
    task_prerun.connect(_task_started, weak=False, dispatch_uid="fulfillment.logs.task_started")
    task_postrun.connect(_task_ended, weak=False, dispatch_uid="fulfillment.logs.task_ended")
