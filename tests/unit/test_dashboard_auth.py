"""The dashboard's sign-in through the Flask test client: the limits on guessing (Flask-Limiter on Redis), sessions
that sign-out ends, and what an operator sees when Redis is gone."""

from __future__ import annotations

import re
import uuid

import pytest
import redis

from app import create_app
from fulfillment.config import Config
from fulfillment.operators import create_operator

PASSWORD = "a long operator password"


@pytest.fixture
def app(sqlite_url, redis_url):
    # A secret of its own per test: the limiter's keys are keyed with it, so no test sees another's counts.
    app = create_app(Config(database_url=sqlite_url, redis_url=redis_url, secret_key=uuid.uuid4().hex))
    yield app
    app.extensions["fulfillment"].db.dispose()


@pytest.fixture
def operator(app) -> str:
    email = f"op-{uuid.uuid4().hex[:6]}@warehouse.example"
    create_operator(app.extensions["fulfillment"], email, PASSWORD)
    return email


def token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def sign_in(client, email: str, password: str = PASSWORD, **environ):
    page = client.get("/dashboard/login").get_data(as_text=True)
    return client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "csrf_token": token(page)},
        **({"environ_base": environ} if environ else {}),
    )


def test_five_failures_hold_back_that_account_from_that_address_even_with_the_right_password(app, operator):
    client = app.test_client()
    assert [sign_in(client, operator, "a wrong password").status_code for _ in range(5)] == [401] * 5
    held = sign_in(client, operator)
    assert held.status_code == 429 and "Too many failed sign-ins" in held.get_data(as_text=True)
    assert 0 < int(held.headers["Retry-After"]) <= 15 * 60
    # Another address is not held back by someone else's guessing.
    assert sign_in(app.test_client(), operator, REMOTE_ADDR="10.0.0.2").status_code == 302


def test_a_password_tried_on_many_accounts_is_held_back_after_ten(app, operator):
    client = app.test_client()
    answers = [
        sign_in(client, f"n{n}@warehouse.example", "Winter2026!", REMOTE_ADDR=f"10.1.0.{n}").status_code
        for n in range(11)
    ]
    assert answers == [401] * 10 + [429]
    assert sign_in(client, operator).status_code == 302


def test_one_address_trying_many_accounts_is_held_back_after_thirty(app, operator):
    client = app.test_client()
    answers = [sign_in(client, f"m{n}@warehouse.example", f"guess number {n}").status_code for n in range(31)]
    assert answers == [401] * 30 + [429]


def test_a_signed_out_session_cannot_be_used_again(app, operator):
    client = app.test_client()
    assert sign_in(client, operator).status_code == 302
    cookie = client.get_cookie("session").value
    page = client.get("/dashboard/").get_data(as_text=True)
    assert client.post("/dashboard/logout", data={"csrf_token": token(page)}).status_code == 302

    replay = app.test_client()
    replay.set_cookie("session", cookie)
    answer = replay.get("/dashboard/")
    assert answer.status_code == 302 and "/dashboard/login" in answer.headers["Location"]


def test_a_changed_password_signs_out_every_session(app, operator):
    from fulfillment.operators import set_password

    client = app.test_client()
    assert sign_in(client, operator).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    set_password(app.extensions["fulfillment"], operator, "a brand new password")
    assert client.get("/dashboard/").status_code == 302


def test_without_redis_the_sign_in_says_it_is_unavailable(sqlite_url):
    app = create_app(Config(database_url=sqlite_url, redis_url="redis://127.0.0.1:9/0"))
    client = app.test_client()
    with client.session_transaction() as session:
        session["csrf"] = "t"
    answer = client.post("/dashboard/login", data={"email": "a@b.example", "password": "x", "csrf_token": "t"})
    assert answer.status_code == 503 and "unavailable" in answer.get_data(as_text=True)
    with pytest.raises(redis.RedisError):
        redis.Redis.from_url("redis://127.0.0.1:9/0").ping()
