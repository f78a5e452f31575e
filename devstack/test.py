"""`python3 dev.py test`: the whole suite, with a real Redis (an embedded one when REDIS_URL is unset).

Extra arguments go to pytest. DATABASE_URL pointing at a PostgreSQL server makes the suite create its own
database there (and drop it afterwards); otherwise every test database is a SQLite file.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

from devstack.processes import Stack


def main(argv: list[str]) -> int:
    stack = Stack(dict(os.environ), Path(tempfile.mkdtemp(prefix="fulfillment-test-")) / "log")
    try:
        if not os.environ.get("REDIS_URL"):
            _, url = stack.redis(stack.log_dir.parent / "redis")
            os.environ["REDIS_URL"] = url
            print(f"test: embedded redis at {url}", flush=True)
        return int(pytest.main(argv))
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
