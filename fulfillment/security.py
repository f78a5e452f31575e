"""Signatures the store puts on what it sends us, and the encryption of access tokens at rest."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
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


def query_string_signature(secret: str, params: Mapping[str, str]) -> str:
    """Hex HMAC-SHA256 over the query parameters (minus `hmac`) sorted by name, as the OAuth redirect is signed."""
    message = "&".join(f"{key}={params[key]}" for key in sorted(params) if key not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def verify_query_string(secret: str, params: Mapping[str, str]) -> bool:
    received = params.get("hmac") or ""
    expected = query_string_signature(secret, params)
    return hmac.compare_digest(received.encode(), expected.encode())


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
