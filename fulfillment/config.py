"""The one configuration object, built from the environment and passed to whoever needs it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_URL = f"sqlite:///{REPO_ROOT / 'var' / 'fulfillment.db'}"


class ConfigError(ValueError):
    """A setting is missing or malformed."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Config:
    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str = "redis://127.0.0.1:6379/0"
    shopify_api_key: str = "dev-api-key"
    shopify_api_secret: str = "dev-api-secret"  # noqa: S105 - development default, overridden in production
    app_url: str = "http://127.0.0.1:8000"
    secret_key: str = "dev-secret-key"  # noqa: S105
    token_encryption_key: str = ""
    # A local sandbox store answers for every shop at this base URL; unset in production (https://{shop}).
    store_base_url: str | None = None
    service_name: str = "Warehouse Fulfillment"
    pick_delay_s: float = 1.0
    pack_delay_s: float = 1.0
    handling_days: float = 1.0
    # A shop we hold open work for (a fulfillment order not yet final) is swept every `sweep_interval_s`; an idle
    # one every `idle_sweep_interval_s` (the safety sweep: what a shop whose callback and webhook were both lost
    # waits at most). Between them, the store's callbacks and webhooks prompt the sweeps.
    sweep_interval_s: float = 30.0
    idle_sweep_interval_s: float = 300.0
    # How often beat looks for shelves owed a push to the store, and how often it reconciles every shop's
    # inventory at our location with our shelves.
    inventory_push_interval_s: float = 2.0
    inventory_reconcile_interval_s: float = 300.0
    delivery_event_delay_s: float = 5.0
    # How long a task taken by a worker that died stays with it before the broker hands it to another (Redis
    # transport). Longer than the longest task plus the longest countdown, or a task is handed out twice.
    broker_visibility_timeout_s: float = 300.0
    carrier: str = "DHL Express"
    tracking_url_template: str = "https://tracking.example.com/{number}"
    task_always_eager: bool = False
    # Bearer token for the warehouse API (/api/...); unset disables it.
    operator_api_token: str = ""
    max_units_per_package: int = 4
    # The simulated warehouse stocks unknown SKUs with this many units (the demo); unset: unknown SKUs have none.
    default_stock: int | None = None
    # How many proxies in front of the web app set X-Forwarded-For / -Proto (werkzeug's ProxyFix); 0 trusts none.
    trusted_proxies: int = 0
    # Bearer token /metrics asks for; unset leaves it open (keep it on the internal network then).
    metrics_token: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or defaults.database_url,
            redis_url=env.get("REDIS_URL") or defaults.redis_url,
            shopify_api_key=env.get("SHOPIFY_API_KEY") or defaults.shopify_api_key,
            shopify_api_secret=env.get("SHOPIFY_API_SECRET") or defaults.shopify_api_secret,
            app_url=(env.get("APP_URL") or defaults.app_url).rstrip("/"),
            secret_key=env.get("SECRET_KEY") or defaults.secret_key,
            token_encryption_key=env.get("TOKEN_ENCRYPTION_KEY") or defaults.token_encryption_key,
            store_base_url=(env.get("STORE_BASE_URL") or "").rstrip("/") or None,
            service_name=env.get("FULFILLMENT_SERVICE_NAME") or defaults.service_name,
            pick_delay_s=_float(env, "PICK_DELAY_S", defaults.pick_delay_s),
            pack_delay_s=_float(env, "PACK_DELAY_S", defaults.pack_delay_s),
            handling_days=_float(env, "HANDLING_DAYS", defaults.handling_days),
            sweep_interval_s=_float(env, "SWEEP_INTERVAL_S", defaults.sweep_interval_s),
            idle_sweep_interval_s=_float(env, "IDLE_SWEEP_INTERVAL_S", defaults.idle_sweep_interval_s),
            inventory_push_interval_s=_float(env, "INVENTORY_PUSH_INTERVAL_S", defaults.inventory_push_interval_s),
            inventory_reconcile_interval_s=_float(
                env, "INVENTORY_RECONCILE_INTERVAL_S", defaults.inventory_reconcile_interval_s
            ),
            delivery_event_delay_s=_float(env, "DELIVERY_EVENT_DELAY_S", defaults.delivery_event_delay_s),
            broker_visibility_timeout_s=_float(
                env, "BROKER_VISIBILITY_TIMEOUT_S", defaults.broker_visibility_timeout_s
            ),
            carrier=env.get("CARRIER") or defaults.carrier,
            tracking_url_template=env.get("TRACKING_URL_TEMPLATE") or defaults.tracking_url_template,
            task_always_eager=_bool(env, "CELERY_TASK_ALWAYS_EAGER", False),
            operator_api_token=env.get("OPERATOR_API_TOKEN", ""),
            max_units_per_package=_int(env, "SIMULATOR_MAX_UNITS_PER_PACKAGE", defaults.max_units_per_package),
            default_stock=_int(env, "SIMULATOR_DEFAULT_STOCK", None),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", defaults.trusted_proxies),
            metrics_token=env.get("METRICS_TOKEN", ""),
        )

    @property
    def callback_url(self) -> str:
        """The prefix the store calls (`<callback_url>/fulfillment_order_notification`)."""
        return self.app_url
