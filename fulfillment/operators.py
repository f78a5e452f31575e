"""Operator accounts for the dashboard: salted scrypt password hashes, sign-in, and a brake on guessing.

Failed sign-ins are counted in Redis per email and client address, so a guesser is slowed on every web
process at once and a colleague's typo elsewhere does not lock an operator out.
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

from fulfillment.context import Context
from fulfillment.models import Operator

log = logging.getLogger("fulfillment.operators")

MIN_PASSWORD_LENGTH = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# scrypt cost: 2**14 x 8 x 1 takes tens of milliseconds and 16 MiB, the figures the scrypt paper gives for
# interactive logins.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**14, 8, 1, 32


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


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=64 * 1024 * 1024)


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash`: the parameters travel with the hash so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


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
    return operator if verify_password(password, operator.password_hash) else None


def get_operator(ctx: Context, operator_id: int) -> Operator | None:
    with ctx.db.transaction() as session:
        return session.get(Operator, operator_id)


@dataclass(frozen=True)
class LoginThrottle:
    """At most `limit` failed sign-ins per email and client address within `window_s` seconds."""

    redis: redis.Redis
    limit: int = 5
    window_s: int = 15 * 60

    def _key(self, email: str, client: str) -> str:
        # Hashed so that the keys hold neither emails nor addresses.
        digest = hashlib.sha256(f"{normalize_email(email)}\x00{client}".encode()).hexdigest()
        return f"fulfillment:login-failures:{digest}"

    def blocked(self, email: str, client: str) -> bool:
        count = self.redis.get(self._key(email, client))
        return count is not None and int(count) >= self.limit

    def failed(self, email: str, client: str) -> int:
        """Count a failure; returns how many there were in the window."""
        key = self._key(email, client)
        pipe = self.redis.pipeline()
        pipe.set(key, 0, ex=self.window_s, nx=True)  # the window opens at the first failure; INCR keeps it
        pipe.incr(key)
        _, count = pipe.execute()
        return int(count)

    def succeeded(self, email: str, client: str) -> None:
        self.redis.delete(self._key(email, client))
