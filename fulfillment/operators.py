"""Operator accounts for the dashboard: password hashes (werkzeug's scrypt), sign-in, and server-side sessions.

Hashes are werkzeug's `scrypt:N:r:p$salt$hash`. Accounts made before carry our earlier `scrypt$N$r$p$salt$hash`:
they still sign in, and their hash is replaced by werkzeug's on that sign-in. Sessions live in Redis, so that
signing out ends a session for good, not only in the browser that signed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass

import redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from fulfillment.context import Context
from fulfillment.models import Operator

log = logging.getLogger("fulfillment.operators")

MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# werkzeug's default cost (scrypt, N=2**15, r=8, p=1): tens of milliseconds and 32 MiB per check.
HASH_METHOD = "scrypt"


class OperatorError(ValueError):
    """An account cannot be created as asked; the message says why, for the person creating it."""


class WeakPassword(OperatorError):
    pass


class InvalidEmail(OperatorError):
    pass


class OperatorExists(OperatorError):
    pass


def normalize_email(email: str) -> str:
    return email.strip().lower()


def hash_password(password: str) -> str:
    """werkzeug's `scrypt:N:r:p$salt$hash`: the parameters travel with the hash so they can be raised later."""
    return generate_password_hash(password, method=HASH_METHOD)


def _verify_earlier_hash(password: str, stored: str) -> bool:
    """Our earlier `scrypt$N$r$p$salt$hash`, kept so that accounts made before still sign in."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _verify_earlier_hash(password, stored)
    if not stored.startswith(f"{HASH_METHOD}:"):
        return False  # nothing else was ever stored; an unknown method is not worth the cost of trying
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"{HASH_METHOD}:")


# Checked against when the email is unknown, so an unknown email costs as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_operator(ctx: Context, email: str, password: str) -> int:
    """Create an account; returns its id. Raises InvalidEmail, WeakPassword or OperatorExists."""
    email = normalize_email(email)
    if not _EMAIL.match(email) or len(email) > 255:
        raise InvalidEmail(f"not an email address: {email!r}")
    check_new_password(password)
    try:
        with ctx.db.transaction() as session:
            operator = Operator(email=email, password_hash=hash_password(password))
            session.add(operator)
            session.flush()
            operator_id = operator.id
    except IntegrityError as exc:
        raise OperatorExists(f"an operator with the email {email} exists already") from exc
    log.info("operator_created operator=%s", operator_id)
    return operator_id


def set_password(ctx: Context, email: str, password: str) -> bool:
    """Replace an operator's password; False when there is no such operator."""
    check_new_password(password)
    with ctx.db.transaction() as session:
        operator = session.scalar(select(Operator).where(Operator.email == normalize_email(email)))
        if operator is None:
            return False
        operator.password_hash = hash_password(password)
    return True


def authenticate(ctx: Context, email: str, password: str) -> Operator | None:
    """The operator whose email and password these are, or None."""
    with ctx.db.transaction() as session:
        operator = session.scalar(select(Operator).where(Operator.email == normalize_email(email)))
    if operator is None:
        verify_password(password, _DUMMY_HASH)
        return None
    if not verify_password(password, operator.password_hash):
        return None
    if needs_rehash(operator.password_hash):
        # The only moment we hold the password of an account with an earlier hash: move it to the current one.
        with ctx.db.transaction() as session:
            stored = session.get(Operator, operator.id)
            stored.password_hash = hash_password(password)
            operator = stored
        log.info("operator_password_rehashed operator=%s", operator.id)
    return operator


def get_operator(ctx: Context, operator_id: int) -> Operator | None:
    with ctx.db.transaction() as session:
        return session.get(Operator, operator_id)


@dataclass(frozen=True)
class SessionStore:
    """Dashboard sessions held in Redis: the browser's cookie carries only an id, and signing out deletes it.

    Keys are digests of the ids, so Redis holds nothing a cookie could be rebuilt from.
    """

    redis: redis.Redis
    lifetime_s: int = 12 * 3600

    def _key(self, session_id: str) -> str:
        return "fulfillment:operator-session:" + hashlib.sha256(session_id.encode()).hexdigest()

    def open(self, operator_id: int) -> str:
        session_id = secrets.token_urlsafe(32)
        self.redis.set(self._key(session_id), operator_id, ex=self.lifetime_s)
        return session_id

    def operator_id(self, session_id: str) -> int | None:
        value = self.redis.get(self._key(session_id))
        return int(value) if value is not None else None

    def close(self, session_id: str) -> None:
        self.redis.delete(self._key(session_id))
