"""Shops we serve: connecting one (token stored encrypted, our fulfillment service registered) and finding it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from fulfillment import inventory_sync
from fulfillment.context import Context
from fulfillment.db import Database
from fulfillment.models import Shop, utcnow
from fulfillment.shop_domain import require_shop_domain
from fulfillment.store import operations as ops

log = logging.getLogger("fulfillment.shops")


def find_shop(session: Session, domain: str) -> Shop | None:
    return session.scalar(select(Shop).where(Shop.domain == domain.lower()))


def active_shop_id(db: Database, domain: str) -> int | None:
    """The id of the installed shop with this domain, or None: one indexed SELECT on a pooled connection, no ORM
    session (a session's setup and teardown cost several times the query on a path taken by every store ping)."""
    query = select(Shop.id).where(
        Shop.domain == domain.lower(), Shop.uninstalled_at.is_(None), Shop.access_token_ciphertext.is_not(None)
    )
    with db.engine.connect() as connection:
        return connection.scalar(query)


# How long a web process goes on taking a shop for installed without reading it again. An uninstall answered
# by this process is seen at once (`forget`); one answered by another process, within this many seconds. All
# a stale entry lets through is one sweep queued for a shop that has just left, and the sweep stops at a shop
# that is not active.
ACTIVE_SHOP_TTL_S = 5.0
ACTIVE_SHOP_MAX_ENTRIES = 10_000


class ActiveShops:
    """The ids of installed shops by domain, as this process last read them, each for at most `ttl_s` seconds.

    Only installed shops are remembered: an unknown or uninstalled domain is read again at each request, so a
    shop that installs (or comes back) is served at its first ping. Safe to share between threads.
    """

    def __init__(
        self,
        db: Database,
        ttl_s: float = ACTIVE_SHOP_TTL_S,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = ACTIVE_SHOP_MAX_ENTRIES,
    ):
        self.db = db
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def lookup(self, domain: str) -> int | None:
        domain = domain.lower()
        entry = self._entries.get(domain)
        now = self.clock()
        if entry is not None and entry[0] > now:
            return entry[1]
        shop_id = active_shop_id(self.db, domain)
        with self._lock:
            if shop_id is None:
                self._entries.pop(domain, None)
            else:
                if len(self._entries) >= self.max_entries:
                    # Past the bound (more shops than any one process pings within a TTL): start over.
                    self._entries.clear()
                self._entries[domain] = (now + self.ttl_s, shop_id)
        return shop_id

    def forget(self, domain: str) -> None:
        """The shop was uninstalled, reinstalled or removed: read it again at its next request."""
        with self._lock:
            self._entries.pop(domain.lower(), None)


def save_token(ctx: Context, domain: str, access_token: str, scopes: str = "") -> int:
    """Store (or replace, on reinstall) the shop's offline token, encrypted; returns the shop's id."""
    domain = require_shop_domain(domain)
    with ctx.db.transaction() as session:
        shop = find_shop(session, domain)
        if shop is None:
            shop = Shop(domain=domain, settings={})
            session.add(shop)
        shop.access_token_ciphertext = ctx.cipher.encrypt(access_token)
        shop.scopes = scopes
        shop.uninstalled_at = None
        shop.installed_at = utcnow()
        session.flush()
        return shop.id


def register_fulfillment_service(ctx: Context, shop_id: int) -> str:
    """Make sure the store knows us as a fulfillment service with our callback URL; returns our location id.

    Reinstalling finds the service we created before (by name, among the apps' services: never the store's
    built-in manual one, whose location is the merchant's own) and updates its callback URL in place.
    """
    with ctx.db.transaction() as session:
        shop = session.get(Shop, shop_id)
        client = ctx.store_for(shop)
        name = ctx.config.service_name
        existing = next(
            (s for s in ops.fulfillment_services(client) if s.type == "THIRD_PARTY" and s.name == name), None
        )
        if existing is None:
            service = ops.create_fulfillment_service(
                client,
                name=name,
                callback_url=ctx.config.callback_url,
                tracking_support=True,
                inventory_management=True,
            )
        else:
            service = ops.update_fulfillment_service(
                client,
                existing.id,
                callback_url=ctx.config.callback_url,
                tracking_support=True,
                inventory_management=True,
            )
        shop.fulfillment_service_id = service.id
        shop.location_id = service.location_id
        inventory_sync.on_install(session, shop_id)  # the store learns our stock now, not at the next change
        log.info(
            "fulfillment_service_registered shop=%s service=%s location=%s",
            shop.domain,
            service.id,
            service.location_id,
        )
        return service.location_id


def connect_shop(ctx: Context, domain: str, access_token: str, scopes: str = "") -> int:
    """Store the token and register our fulfillment service; returns the shop's id.

    All or nothing: when the store refuses (a bad token, unreachable), a shop new to us is removed again and a
    known one keeps the token it had, so no half-connected shop is left for the sweeps to fail on forever.
    """
    domain = require_shop_domain(domain)
    with ctx.db.transaction() as session:
        known = find_shop(session, domain)
        before = None if known is None else (known.access_token_ciphertext, known.scopes, known.uninstalled_at)
    shop_id = save_token(ctx, domain, access_token, scopes)
    try:
        register_fulfillment_service(ctx, shop_id)
    except Exception:
        with ctx.db.transaction() as session:
            shop = session.get(Shop, shop_id)
            if before is None:
                session.delete(shop)
            else:
                shop.access_token_ciphertext, shop.scopes, shop.uninstalled_at = before
        raise
    return shop_id
