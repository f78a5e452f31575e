"""The sandbox's configuration: one object, built from the environment and overridable by a dict (tests)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

# Environment variable -> field.
ENVIRONMENT = {
    "SHOPIFY_API_KEY": "api_key",
    "SHOPIFY_API_SECRET": "api_secret",
    "SANDBOX_PUBLIC_URL": "public_url",
    "SANDBOX_APP_HOSTS": "app_hosts",
    "SANDBOX_APP_ID": "app_id",
}


@dataclass
class SandboxConfig:
    api_key: str = "sandbox-api-key"
    # Signs callbacks, webhooks and OAuth redirects as the app's client secret; a placeholder until configured.
    api_secret: str = "sandbox-api-secret"  # noqa: S105
    public_url: str = "http://127.0.0.1:8700"
    # The app's own hosts (its App URL and redirect URLs on the store's side): a fulfillment service's callback
    # URL must be on one of them, a sub-domain, the shop's domain or a loopback host. The default is the host of
    # the app the store recordings were made with.
    app_hosts: tuple[str, ...] = ("mock.shop",)
    # The app's numeric id, as in its reserved metafield namespace `app--<id>--...` (the recorded app's).
    app_id: int = 347082227713
    callback_timeout_s: float = 10.0
    webhook_timeout_s: float = 5.0
    webhook_retry_delays_s: tuple[float, ...] = field(default=(1.0, 5.0, 30.0))
    notify_workers: int = 8

    @classmethod
    def load(
        cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
    ) -> SandboxConfig:
        """Defaults, then the environment, then `overrides` (keys as env names or as field names)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for env_name, name in ENVIRONMENT.items():
            if environ.get(env_name):
                values[name] = environ[env_name]
        known = {f.name for f in fields(cls)}
        for key, value in (overrides or {}).items():
            name = ENVIRONMENT.get(key, key.lower())
            if name not in known:
                raise ValueError(f"unknown sandbox setting: {key}")
            values[name] = value
        if isinstance(values.get("app_hosts"), str):
            values["app_hosts"] = tuple(h.strip().lower() for h in values["app_hosts"].split(",") if h.strip())
        if "app_id" in values:
            values["app_id"] = int(values["app_id"])
        if "webhook_retry_delays_s" in values:
            values["webhook_retry_delays_s"] = tuple(float(d) for d in values["webhook_retry_delays_s"])
        config = cls(**values)
        config.public_url = config.public_url.rstrip("/")
        return config
