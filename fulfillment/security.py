"""Signatures the store puts on what it sends us, and the encryption of access tokens at rest."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


def sign_body(secret: str, body: bytes) -> str:
    """Base64 HMAC-SHA256 of a raw body, as the store computes `X-Shopify-Hmac-Sha256`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_body_signature(secret: str, body: bytes, header_value: str | None) -> bool:
    """True when the header carries the HMAC of these exact bytes.

    The body must be the raw bytes received: re-serialised JSON would not match.
    """
    if not header_value:
        return False
    try:
        received = base64.b64decode(header_value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return hmac.compare_digest(received, expected)


QueryParams = Mapping[str, str] | Iterable[tuple[str, str]]
"""A query string's parameters, decoded: a mapping, or its (name, value) pairs in order when a name repeats."""


def query_pairs(params: QueryParams) -> list[tuple[str, str]]:
    return list(params.items() if isinstance(params, Mapping) else params)


def signed_query_message(params: QueryParams) -> str:
    """The text the store signs for a query string (the OAuth redirect, a signed GET).

    Every parameter but `hmac` is one `name=value` pair of the decoded text. So that no value can pose as a
    pair of its own, `%` becomes `%25` and `&` becomes `%26` in names and values, and `=` becomes `%3D` in names.
    A list `name[]=a&name[]=b` is one pair `name=["a", "b"]` (JSON). The pairs are sorted as text and joined
    with `&`. This is the rule the store documents and its official Python library (`ShopifyAPI`) checks.
    """
    single: list[tuple[str, str]] = []
    lists: dict[str, list[str]] = {}
    for name, value in query_pairs(params):
        if name == "hmac":
            continue
        if name.endswith("[]"):
            lists.setdefault(name.removesuffix("[]"), []).append(value)
        else:
            single.append((name, value))
    single += [(name, json.dumps(values)) for name, values in lists.items()]
    encoded = (
        f"{name.replace('%', '%25').replace('=', '%3D')}={value.replace('%', '%25')}".replace("&", "%26")
        for name, value in single
    )
    return "&".join(sorted(encoded))


def query_string_signature(secret: str, params: QueryParams) -> str:
    """Hex HMAC-SHA256 of `signed_query_message`, keyed with the app's secret."""
    return hmac.new(secret.encode(), signed_query_message(params).encode(), hashlib.sha256).hexdigest()


def verify_query_string(secret: str, params: QueryParams) -> bool:
    """True when the query's one `hmac` parameter signs all its other parameters."""
    pairs = query_pairs(params)
    received = [value for name, value in pairs if name == "hmac"]
    if len(received) != 1:
        return False
    expected = query_string_signature(secret, pairs)
    return hmac.compare_digest(received[0].encode(), expected.encode())


class TokenCipher:
    """Encrypts access tokens with a key ring: the first key encrypts, every key decrypts.

    Rotation: put the new key first, keep the old ones until `rotate` has re-encrypted every token.
    """

    def __init__(self, keys: Iterable[str]):
        fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]
        if not fernets:
            raise ValueError("at least one token encryption key is required")
        self._ring = MultiFernet(fernets)

    @classmethod
    def from_setting(cls, setting: str, fallback_secret: str) -> TokenCipher:
        """Keys from TOKEN_ENCRYPTION_KEY (comma-separated); in development, one derived from SECRET_KEY."""
        keys = [key.strip() for key in setting.split(",") if key.strip()]
        if not keys:
            derived = hashlib.sha256(("token-encryption:" + fallback_secret).encode()).digest()
            keys = [base64.urlsafe_b64encode(derived).decode()]
        return cls(keys)

    def encrypt(self, token: str) -> str:
        return self._ring.encrypt(token.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._ring.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("access token cannot be decrypted with the configured keys") from exc

    def rotate(self, ciphertext: str) -> str:
        return self._ring.rotate(ciphertext.encode()).decode()
