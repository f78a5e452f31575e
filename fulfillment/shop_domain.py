"""Validation of a shop's `*.myshopify.com` domain, the key every store call and stored record hangs off.

A shop domain arrives from outside (OAuth redirects, callback and webhook headers, operators) and ends up in
URLs we send an access token to, so it is checked before anything is built from it.
"""

from __future__ import annotations

import re

SHOP_DOMAIN_PATTERN = r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$"
# The shop's name is one DNS label: at most 63 characters.
MAX_NAME_LENGTH = 63

# fullmatch, not match: `$` alone would accept a trailing newline ("shop.myshopify.com\n"). ASCII and
# IGNORECASE together: the suffix in any letter case, but no Unicode case folding (the Kelvin sign U+212A
# folds to "k", and would make "\u212aelvin.myshopify.com" pass for "kelvin.myshopify.com").
_SHOP_DOMAIN_RE = re.compile(SHOP_DOMAIN_PATTERN, re.ASCII | re.IGNORECASE)


class InvalidShopDomain(ValueError):
    """The value is not a bare `<name>.myshopify.com` domain."""


def is_valid_shop_domain(domain: str) -> bool:
    """True when `domain` is a bare `<name>.myshopify.com` domain (any letter case)."""
    # DNS names are case-insensitive, so "Acme.MyShopify.com" is the same shop as "acme.myshopify.com".
    # Matched as sent, before any lower(): lower-casing first is what lets look-alike letters through.
    if not isinstance(domain, str) or not domain.isascii() or _SHOP_DOMAIN_RE.fullmatch(domain) is None:
        return False
    return len(domain.split(".", 1)[0]) <= MAX_NAME_LENGTH


def require_shop_domain(domain: str) -> str:
    """Return `domain` lower-cased, or raise `InvalidShopDomain` if it is not a shop domain."""
    if not is_valid_shop_domain(domain):
        # repr() so that control characters or surrounding spaces are visible in the message.
        raise InvalidShopDomain(f"not a *.myshopify.com shop domain: {domain!r}")
    return domain.lower()
