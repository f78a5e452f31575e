"""Shop-domain validation: only bare `<name>.myshopify.com` domains get through."""

import pytest

from fulfillment.shop_domain import (
    SHOP_DOMAIN_PATTERN,
    InvalidShopDomain,
    is_valid_shop_domain,
    require_shop_domain,
)


@pytest.mark.parametrize(
    "domain",
    ["acme.myshopify.com", "acme-dev-2.myshopify.com", "9lives.myshopify.com", "ACME.MyShopify.com"],
)
def test_accepts_bare_myshopify_domains(domain):
    assert is_valid_shop_domain(domain)


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "myshopify.com",
        ".myshopify.com",
        "-acme.myshopify.com",
        "acme.myshopify.com.evil.example",
        "acme.evil.example",
        "https://acme.myshopify.com",
        "acme.myshopify.com/admin",
        "acme.myshopify.com:443",
        "acme.myshopify.com\n",
        " acme.myshopify.com",
        "acme_shop.myshopify.com",
        "sub.acme.myshopify.com",
        "acme.myshopifyXcom",
        "user@acme.myshopify.com",
    ],
)
def test_rejects_anything_else(domain):
    assert not is_valid_shop_domain(domain)
    with pytest.raises(InvalidShopDomain):
        require_shop_domain(domain)


def test_rejects_non_strings():
    assert not is_valid_shop_domain(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidShopDomain):
        require_shop_domain(b"acme.myshopify.com")  # type: ignore[arg-type]


def test_require_returns_lowercase_domain():
    assert require_shop_domain("Acme-Store.MYSHOPIFY.com") == "acme-store.myshopify.com"


def test_invalid_shop_domain_is_a_value_error():
    assert issubclass(InvalidShopDomain, ValueError)


def test_pattern_is_the_documented_one():
    assert SHOP_DOMAIN_PATTERN == r"^[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com$"


@pytest.mark.parametrize(
    "domain",
    [
        "\u212aelvin.myshopify.com",  # the Kelvin sign, which lower() turns into "k"
        "\u212a.myshopify.com",
        "\u017fhop.myshopify.com",  # the long s, which case-folds to "s"
        "acme.my\u0455hopify.com",  # a Cyrillic look-alike
        "a" * 64 + ".myshopify.com",
        "a" * 100 + ".myshopify.com",
    ],
)
def test_rejects_look_alike_letters_and_names_longer_than_a_dns_label(domain):
    assert not is_valid_shop_domain(domain)
    with pytest.raises(InvalidShopDomain):
        require_shop_domain(domain)


def test_accepts_a_name_of_exactly_63_characters():
    assert require_shop_domain("A" * 63 + ".myshopify.com") == "a" * 63 + ".myshopify.com"
