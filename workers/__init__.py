"""Celery workers: turn messages into calls on the core. `celery -A workers worker` / `celery -A workers beat`."""

from workers.celery_app import celery

__all__ = ["celery"]
