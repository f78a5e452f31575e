"""The Alembic migrations build the schema the models describe."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect

from fulfillment.migrate import alembic_config, upgrade
from fulfillment.models import Base


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('migrations') / 'nested' / 'fulfillment.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def test_upgrade_creates_every_table_the_models_declare(engine):
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert {"shops", "fulfillment_orders", "state_changes", "deliveries", "reservations"} <= tables


def test_upgrade_records_the_head_revision(engine, database_url):
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    with engine.connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head


def test_models_match_the_migrated_schema(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_models_differing_from_the_schema_would_be_noticed(engine):
    # The comparison above is only worth something if it can see a difference.
    metadata = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    Table("not_migrated", metadata, Column("id", Integer, primary_key=True))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert [d[0] for d in differences] == ["add_table"]


def test_upgrade_twice_is_harmless(database_url, engine):
    upgrade(database_url)
    assert "alembic_version" in inspect(engine).get_table_names()


def test_deliveries_are_unique_per_source_and_key(engine):
    uniques = inspect(engine).get_unique_constraints("deliveries")
    assert any(set(u["column_names"]) == {"source", "delivery_key"} for u in uniques)
