"""What the core needs from the outside world, built once per process from the configuration."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests
from sqlalchemy.orm import Session

from fulfillment.config import Config
from fulfillment.db import Database
from fulfillment.models import Shop
from fulfillment.security import TokenCipher
from fulfillment.store.client import StoreClient
from fulfillment.store.throttle import CostBudget, LocalCostBudget
from fulfillment.warehouse import SimulatedWarehouse, SimulatorSettings, Warehouse


class ShopNotConnected(Exception):
    """The shop has no usable access token (never installed, or uninstalled)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Context:
    config: Config
    db: Database
    cipher: TokenCipher
    budget: CostBudget = field(default_factory=LocalCostBudget)
    http: requests.Session = field(default_factory=requests.Session)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    clock: Callable[[], datetime] = _utcnow
    warehouse_factory: Callable[[Session], Warehouse] | None = None
    on_cost: Callable | None = None
    # Access tokens as decrypted, by their ciphertext: a step talks to its shop's store every time, and
    # decrypting (an HMAC check and AES) cost more than the rest of making the client.
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_config(cls, config: Config, *, budget: CostBudget | None = None, **overrides) -> Context:
        cipher = TokenCipher.from_setting(config.token_encryption_key, config.secret_key)
        simulator = SimulatorSettings(
            carrier=config.carrier,
            tracking_url_template=config.tracking_url_template,
            max_units_per_package=config.max_units_per_package,
            default_stock=config.default_stock,
        )
        return cls(
            config=config,
            db=Database(config.database_url),
            cipher=cipher,
            budget=budget or LocalCostBudget(),
            simulator=simulator,
            **overrides,
        )

    def store_for(self, shop: Shop) -> StoreClient:
        if not shop.active or shop.access_token_ciphertext is None:
            raise ShopNotConnected(shop.domain)
        return StoreClient(
            shop.domain,
            self._token(shop.access_token_ciphertext),
            base_url=self.config.store_base_url,
            session=self.http,
            budget=self.budget,
            on_cost=self.on_cost,
        )

    def _token(self, ciphertext: str) -> str:
        token = self._tokens.get(ciphertext)
        if token is None:
            token = self.cipher.decrypt(ciphertext)
            if len(self._tokens) >= 10_000:  # one a shop: bounded all the same
                self._tokens.clear()
            self._tokens[ciphertext] = token
        return token

    def warehouse(self, session: Session) -> Warehouse:
        if self.warehouse_factory is not None:
            return self.warehouse_factory(session)
        return SimulatedWarehouse(session, self.simulator)
