"""Logs are one JSON object a line, and carry the request id on web requests and the task id in tasks."""

from __future__ import annotations

import io
import json
import logging

import pytest
from celery import Celery
from flask import Flask

from app import request_log
from fulfillment import logs
from workers import logs as worker_logs


@pytest.fixture
def lines():
    """What our handler writes for the `t` logger, one parsed JSON object per line."""
    out = io.StringIO()
    handler = logs.handler()
    handler.setStream(out)
    logger = logging.getLogger("t")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_each_line_is_one_json_object_with_level_logger_and_message(lines):
    logging.getLogger("t").warning("sweep_failed shop=%s", "a.myshopify.com")
    (line,) = lines()
    assert line["level"] == "WARNING" and line["logger"] == "t"
    assert line["message"] == "sweep_failed shop=a.myshopify.com"
    assert "time" in line


def test_fields_bound_for_a_block_are_on_its_lines_only(lines):
    log = logging.getLogger("t")
    with logs.bound(request_id="r-1"):
        log.info("inside")
    log.info("outside")
    inside, outside = lines()
    assert inside["request_id"] == "r-1"
    assert "request_id" not in outside


def test_an_exception_stays_on_its_one_line(lines):
    try:
        raise ValueError("no")
    except ValueError:
        logging.getLogger("t").exception("failed")
    (line,) = lines()
    assert "ValueError: no" in line["exc_info"]


def web_app() -> Flask:
    app = Flask("t")
    request_log.init_app(app)

    @app.get("/work")
    def work():
        logging.getLogger("t").info("working")
        return "ok"

    return app


def test_a_web_request_s_lines_carry_its_request_id_sent_back_in_the_answer(lines):
    client = web_app().test_client()
    response = client.get("/work")
    (line,) = lines()
    assert line["message"] == "working"
    assert line["request_id"] == response.headers["X-Request-Id"] and len(line["request_id"]) == 32


def test_the_caller_s_request_id_is_kept_when_plain_and_replaced_when_not(lines):
    client = web_app().test_client()
    kept = client.get("/work", headers={"X-Request-Id": "abc-123"})
    replaced = client.get("/work", headers={"X-Request-Id": "no spaces; <script>"})
    first, second = lines()
    assert first["request_id"] == kept.headers["X-Request-Id"] == "abc-123"
    assert second["request_id"] == replaced.headers["X-Request-Id"] != "no spaces; <script>"


def test_a_task_s_lines_carry_its_task_id_and_name(lines):
    celery = Celery("t", broker="memory://")
    worker_logs.connect()

    @celery.task(name="t.step")
    def step():
        logging.getLogger("t").info("stepping")

    result = step.apply()
    logging.getLogger("t").info("after")
    inside, after = lines()
    assert inside["task_id"] == result.id and inside["task"] == "t.step"
    assert "task_id" not in after


def test_what_a_view_notes_ends_its_request_s_one_closing_line():
    out = io.StringIO()
    handler = logs.handler()
    handler.setStream(out)
    logger = logging.getLogger("app.request")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    app = Flask("t")
    request_log.init_app(app)

    @app.post("/ping")
    def ping():
        request_log.note(shop="a.myshopify.com", kind="FULFILLMENT_REQUEST")
        request_log.note(queued=False)
        return "ok"

    try:
        app.test_client().post("/ping")
    finally:
        logger.removeHandler(handler)
    (line,) = [json.loads(text) for text in out.getvalue().splitlines()]
    assert line["message"].startswith("request method=POST path=/ping status=200 duration_ms=")
    assert line["message"].endswith(" shop=a.myshopify.com kind=FULFILLMENT_REQUEST queued=False")
