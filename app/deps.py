"""Access to what create_app built, for views."""

from __future__ import annotations

import redis
from celery import Celery
from flask import current_app

from fulfillment.context import Context
from fulfillment.shops import ActiveShops


def ctx() -> Context:
    return current_app.extensions["fulfillment"]


def celery() -> Celery:
    return current_app.extensions["celery"]


def redis_client() -> redis.Redis:
    return current_app.extensions["redis"]


def active_shops() -> ActiveShops:
    return current_app.extensions["active_shops"]
