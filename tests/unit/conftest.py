"""Unit-test fixtures: a freshly migrated SQLite database per test, copied from one migrated template."""

from __future__ import annotations

import shutil

import pytest

from fulfillment.migrate import upgrade


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("unit-db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(migrated_template, tmp_path) -> str:
    """The URL of a new database at the newest schema, for this test alone."""
    path = tmp_path / "fulfillment.db"
    shutil.copy(migrated_template, path)
    return f"sqlite:///{path}"
