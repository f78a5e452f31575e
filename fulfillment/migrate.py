"""Bring a database to the newest schema with Alembic (`python -m fulfillment.migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig

from fulfillment.config import Config
from fulfillment.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(database_url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str) -> None:
    make_engine(database_url).dispose()  # creates the SQLite file's folder
    command.upgrade(alembic_config(database_url), "head")


if __name__ == "__main__":
    upgrade(Config.from_env().database_url)
