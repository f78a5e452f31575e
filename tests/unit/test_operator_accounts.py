"""Operator accounts: salted scrypt hashes, sign-in, and the brake on guessing passwords."""

import pytest
from sqlalchemy import select

from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import Operator
from fulfillment.operators import (
    InvalidEmail,
    LoginThrottle,
    OperatorExists,
    WeakPassword,
    authenticate,
    create_operator,
    hash_password,
    set_password,
    verify_password,
)


@pytest.fixture
def ctx(sqlite_url):
    context = Context.from_config(Config(database_url=sqlite_url))
    yield context
    context.db.dispose()


def test_a_hash_verifies_its_password_and_no_other():
    stored = hash_password("correct horse battery")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)


def test_each_hash_has_its_own_salt_and_carries_its_parameters():
    first, second = hash_password("same password!"), hash_password("same password!")
    assert first != second
    scheme, n, r, p, salt, digest = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    assert salt != second.split("$")[4]
    assert "same password" not in first


@pytest.mark.parametrize(
    "stored", ["", "plain-text", "pbkdf2$1$2$3$4$5", "scrypt$x$8$1$AAAA$AAAA", "scrypt$16384$8$1$!!$!!"]
)
def test_a_malformed_stored_hash_never_verifies(stored):
    assert not verify_password("anything at all", stored)


def test_created_operator_signs_in_with_its_password_whatever_the_email_case(ctx):
    operator_id = create_operator(ctx, "  Ada@Warehouse.example ", "a long enough password")
    operator = authenticate(ctx, "ada@warehouse.EXAMPLE", "a long enough password")
    assert operator is not None and operator.id == operator_id
    assert operator.email == "ada@warehouse.example"
    with ctx.db.transaction() as session:
        stored = session.scalar(select(Operator.password_hash).where(Operator.id == operator_id))
    assert stored.startswith("scrypt$") and "a long enough password" not in stored


def test_wrong_password_or_unknown_email_signs_nobody_in(ctx):
    create_operator(ctx, "ada@warehouse.example", "a long enough password")
    assert authenticate(ctx, "ada@warehouse.example", "a wrong password!") is None
    assert authenticate(ctx, "eve@warehouse.example", "a long enough password") is None


def test_an_email_has_one_account(ctx):
    create_operator(ctx, "ada@warehouse.example", "a long enough password")
    with pytest.raises(OperatorExists):
        create_operator(ctx, "ADA@warehouse.example", "another long password")


def test_short_passwords_and_non_emails_are_refused(ctx):
    with pytest.raises(WeakPassword):
        create_operator(ctx, "ada@warehouse.example", "short")
    with pytest.raises(InvalidEmail):
        create_operator(ctx, "not an email", "a long enough password")
    with ctx.db.transaction() as session:
        assert session.scalars(select(Operator)).all() == []


def test_a_new_password_replaces_the_old_one(ctx):
    create_operator(ctx, "ada@warehouse.example", "a long enough password")
    assert set_password(ctx, "ada@warehouse.example", "the brand new password")
    assert authenticate(ctx, "ada@warehouse.example", "a long enough password") is None
    assert authenticate(ctx, "ada@warehouse.example", "the brand new password") is not None
    assert not set_password(ctx, "nobody@warehouse.example", "the brand new password")


class FakeRedis:
    """The few Redis commands the throttle uses, with expiry by a hand-moved clock."""

    def __init__(self):
        self.values: dict[str, int] = {}
        self.expires: dict[str, float] = {}
        self.now = 0.0

    def _alive(self, key):
        if key in self.expires and self.expires[key] <= self.now:
            self.values.pop(key, None)
            self.expires.pop(key, None)
        return key in self.values

    def get(self, key):
        return str(self.values[key]).encode() if self._alive(key) else None

    def set(self, key, value, ex=None, nx=False):
        if nx and self._alive(key):
            return None
        self.values[key] = int(value)
        if ex is not None:
            self.expires[key] = self.now + ex
        return True

    def incr(self, key):
        self.values[key] = (self.values[key] if self._alive(key) else 0) + 1
        return self.values[key]

    def delete(self, key):
        self.values.pop(key, None)
        self.expires.pop(key, None)

    def pipeline(self):
        fake = self

        class Pipeline:
            def __init__(self):
                self.calls = []

            def __getattr__(self, name):
                return lambda *a, **kw: self.calls.append((name, a, kw))

            def execute(self):
                return [getattr(fake, name)(*a, **kw) for name, a, kw in self.calls]

        return Pipeline()


def test_five_failures_block_that_email_from_that_address_for_the_window():
    redis = FakeRedis()
    throttle = LoginThrottle(redis, limit=5, window_s=900)
    for attempt in range(1, 6):
        assert not throttle.blocked("ada@warehouse.example", "10.0.0.1")
        assert throttle.failed("ada@warehouse.example", "10.0.0.1") == attempt
    assert throttle.blocked("ADA@warehouse.example", "10.0.0.1")
    # Another address, or another email, is not held back by someone else's guessing.
    assert not throttle.blocked("ada@warehouse.example", "10.0.0.2")
    assert not throttle.blocked("bob@warehouse.example", "10.0.0.1")
    redis.now += 899
    assert throttle.blocked("ada@warehouse.example", "10.0.0.1")
    redis.now += 2
    assert not throttle.blocked("ada@warehouse.example", "10.0.0.1")


def test_failures_keep_the_window_opened_by_the_first_one():
    redis = FakeRedis()
    throttle = LoginThrottle(redis, limit=5, window_s=900)
    throttle.failed("ada@warehouse.example", "10.0.0.1")
    redis.now += 800
    for _ in range(4):
        throttle.failed("ada@warehouse.example", "10.0.0.1")
    assert throttle.blocked("ada@warehouse.example", "10.0.0.1")
    redis.now += 101
    assert not throttle.blocked("ada@warehouse.example", "10.0.0.1")


def test_a_successful_sign_in_clears_the_count_and_keys_hold_no_email():
    redis = FakeRedis()
    throttle = LoginThrottle(redis, limit=5, window_s=900)
    for _ in range(4):
        throttle.failed("ada@warehouse.example", "10.0.0.1")
    assert not any("ada" in key or "10.0.0.1" in key for key in redis.values)
    throttle.succeeded("ada@warehouse.example", "10.0.0.1")
    assert throttle.failed("ada@warehouse.example", "10.0.0.1") == 1
