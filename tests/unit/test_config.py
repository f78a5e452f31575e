"""The configuration object: defaults, what the environment overrides, and malformed settings refused."""

import pytest

from fulfillment.config import DEFAULT_SQLITE_URL, Config, ConfigError


def test_empty_environment_gives_the_defaults():
    config = Config.from_env({})
    assert config == Config()
    assert config.database_url == DEFAULT_SQLITE_URL
    assert config.redis_url == "redis://127.0.0.1:6379/0"
    assert config.store_base_url is None
    assert config.default_stock is None
    assert config.task_always_eager is False
    assert config.max_units_per_package == 4
    assert config.handling_days == 1.0


def test_empty_strings_count_as_unset():
    env = {"DATABASE_URL": "", "HANDLING_DAYS": "", "STORE_BASE_URL": "", "SIMULATOR_DEFAULT_STOCK": ""}
    assert Config.from_env(env) == Config()


def test_environment_overrides_every_setting():
    env = {
        "DATABASE_URL": "postgresql+psycopg://db/fulfillment",
        "REDIS_URL": "redis://cache:6379/3",
        "SHOPIFY_API_KEY": "key",
        "SHOPIFY_API_SECRET": "secret",
        "APP_URL": "https://fulfil.example.com",
        "SECRET_KEY": "sk",
        "TOKEN_ENCRYPTION_KEY": "k1,k2",
        "STORE_BASE_URL": "http://127.0.0.1:9000",
        "FULFILLMENT_SERVICE_NAME": "Acme 3PL",
        "PICK_DELAY_S": "0.5",
        "PACK_DELAY_S": "2",
        "HANDLING_DAYS": "3",
        "SWEEP_INTERVAL_S": "10",
        "CARRIER": "Acme Post",
        "TRACKING_URL_TEMPLATE": "https://t.test/{number}",
        "CELERY_TASK_ALWAYS_EAGER": "yes",
        "SIMULATOR_MAX_UNITS_PER_PACKAGE": "6",
        "SIMULATOR_DEFAULT_STOCK": "25",
    }
    assert Config.from_env(env) == Config(
        database_url="postgresql+psycopg://db/fulfillment",
        redis_url="redis://cache:6379/3",
        shopify_api_key="key",
        shopify_api_secret="secret",
        app_url="https://fulfil.example.com",
        secret_key="sk",
        token_encryption_key="k1,k2",
        store_base_url="http://127.0.0.1:9000",
        service_name="Acme 3PL",
        pick_delay_s=0.5,
        pack_delay_s=2.0,
        handling_days=3.0,
        sweep_interval_s=10.0,
        carrier="Acme Post",
        tracking_url_template="https://t.test/{number}",
        task_always_eager=True,
        max_units_per_package=6,
        default_stock=25,
    )


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("HANDLING_DAYS", "4")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "from-os")
    config = Config.from_env()
    assert config.handling_days == 4.0
    assert config.shopify_api_secret == "from-os"


@pytest.mark.parametrize(
    "name", ["PICK_DELAY_S", "PACK_DELAY_S", "HANDLING_DAYS", "SWEEP_INTERVAL_S", "SIMULATOR_MAX_UNITS_PER_PACKAGE"]
)
def test_bad_number_is_a_config_error_naming_the_setting(name):
    with pytest.raises(ConfigError, match=name):
        Config.from_env({name: "two"})


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", True), ("TRUE", True), (" on ", True), ("0", False), ("no", False)]
)
def test_boolean_settings(raw, expected):
    assert Config.from_env({"CELERY_TASK_ALWAYS_EAGER": raw}).task_always_eager is expected


def test_store_base_url_trailing_slash_is_stripped():
    assert Config.from_env({"STORE_BASE_URL": "http://127.0.0.1:9000/"}).store_base_url == "http://127.0.0.1:9000"
    assert Config.from_env({"STORE_BASE_URL": "http://127.0.0.1:9000//"}).store_base_url == "http://127.0.0.1:9000"


def test_store_base_url_of_only_a_slash_is_unset():
    assert Config.from_env({"STORE_BASE_URL": "/"}).store_base_url is None


def test_app_url_trailing_slash_is_stripped_and_is_the_callback_prefix():
    config = Config.from_env({"APP_URL": "https://fulfil.example.com/"})
    assert config.app_url == "https://fulfil.example.com"
    assert config.callback_url == "https://fulfil.example.com"


def test_bad_default_stock_is_a_config_error_naming_the_setting():
    with pytest.raises(ConfigError, match="SIMULATOR_DEFAULT_STOCK"):
        Config.from_env({"SIMULATOR_DEFAULT_STOCK": "lots"})
