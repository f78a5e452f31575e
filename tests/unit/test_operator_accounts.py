"""Operator accounts: salted scrypt hashes (werkzeug's), earlier hashes still signing in, sessions held in Redis."""

import base64
import hashlib

import pytest
import redis
from sqlalchemy import select

from fulfillment.accounts import (
    InvalidEmail,
    OperatorExists,
    SessionStore,
    WeakPassword,
    authenticate,
    create_operator,
    hash_password,
    set_password,
    verify_password,
)
from fulfillment.config import Config
from fulfillment.context import Context
from fulfillment.models import Operator


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
    method, salt, digest = first.split("$")
    assert method == "scrypt:32768:8:1"
    assert salt != second.split("$")[1]
    assert "same password" not in first


# An account made before werkzeug's hashes: scrypt N=2**14, r=8, p=1, in our earlier `scrypt$N$r$p$salt$hash`.
EARLIER_SALT = b"0123456789abcdef"
EARLIER_HASH = "scrypt$16384$8$1${}${}".format(
    base64.b64encode(EARLIER_SALT).decode(),
    base64.b64encode(
        hashlib.scrypt(b"an earlier password", salt=EARLIER_SALT, n=2**14, r=8, p=1, dklen=32, maxmem=64 * 2**20)
    ).decode(),
)


def test_an_earlier_hash_still_verifies_its_password_and_no_other():
    assert verify_password("an earlier password", EARLIER_HASH)
    assert not verify_password("an earlier passworD", EARLIER_HASH)


def test_an_account_with_an_earlier_hash_signs_in_and_moves_to_the_current_hash(ctx):
    operator_id = create_operator(ctx, "old@warehouse.example", "a long enough password")
    with ctx.db.transaction() as session:
        session.get(Operator, operator_id).password_hash = EARLIER_HASH
    assert authenticate(ctx, "old@warehouse.example", "a wrong password!") is None
    assert authenticate(ctx, "old@warehouse.example", "an earlier password").id == operator_id
    with ctx.db.transaction() as session:
        stored = session.get(Operator, operator_id).password_hash
    assert stored.startswith("scrypt:32768:8:1$")
    assert authenticate(ctx, "old@warehouse.example", "an earlier password").id == operator_id


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
    assert stored.startswith("scrypt:") and "a long enough password" not in stored


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


def test_a_session_names_its_operator_until_it_is_closed(redis_url):
    client = redis.Redis.from_url(redis_url)
    sessions = SessionStore(client, lifetime_s=60)
    # The suite's Redis database also holds the sessions of other tests' operators: look only at what this opens.
    before = set(client.keys("fulfillment:operator-session:*"))
    first, second = sessions.open(7), sessions.open(7)
    assert first != second
    assert (sessions.operator_id(first), sessions.operator_id(second)) == (7, 7)
    sessions.close(first)
    # Closing one session (signing out in one browser) leaves the operator's others alone.
    assert (sessions.operator_id(first), sessions.operator_id(second)) == (None, 7)
    assert sessions.operator_id("made-up") is None
    # Redis holds a digest of the id, never the id itself, and the session ends on its own after its lifetime.
    (key,) = [k for k in set(client.keys("fulfillment:operator-session:*")) - before if client.get(k) == b"7"]
    assert second.encode() not in key
    assert 0 < client.ttl(key) <= 60
    sessions.close(second)
