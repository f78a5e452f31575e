"""`python3 dev.py up`: the whole system on this machine, with a sandbox store and demo orders flowing through.

Starts an embedded Redis (unless REDIS_URL is set), the sandbox store, web, worker and beat under honcho, each
logging to var/log/<name>.log, and the demo (devstack/demo.py), which connects a demo shop, places DEMO_ORDERS
orders, requests their fulfilment as a merchant would and prints their progress. Ctrl-C or SIGTERM stops every
process; so does any one of them ending.

Each run starts from a new database (the default SQLite file; a DATABASE_URL of your own is left as it is): the
sandbox store keeps its shops and orders in memory, so what an earlier run recorded would name fulfillment orders
the new store hands out again.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from honcho.manager import Manager

from devstack.processes import BIN, ROOT, pick_port
from devstack.run import STACK_ENV, VAR, development_env

LOGS = VAR / "log"


def fresh_database(url: str) -> None:
    """Remove the default SQLite database and its journal files; the stack migrates a new one."""
    path = Path(url.removeprefix("sqlite:///"))
    for suffix in ("", "-journal", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def stack_env() -> dict[str, str]:
    """The development settings, with free ports where the usual ones are taken."""
    chosen: dict[str, str] = {}
    if not os.environ.get("REDIS_URL"):
        chosen["REDIS_URL"] = f"redis://127.0.0.1:{pick_port(int(os.environ.get('REDIS_PORT', '6390')))}/0"
    if not os.environ.get("APP_URL"):
        chosen["APP_URL"] = f"http://127.0.0.1:{pick_port(int(os.environ.get('APP_PORT', '8000')))}"
    if not os.environ.get("STORE_BASE_URL"):
        chosen["STORE_BASE_URL"] = f"http://127.0.0.1:{pick_port(int(os.environ.get('SANDBOX_PORT', '8700')))}"
        chosen["SANDBOX_PUBLIC_URL"] = chosen["STORE_BASE_URL"]
    VAR.mkdir(exist_ok=True)
    STACK_ENV.write_text("".join(f"{key}={value}\n" for key, value in chosen.items()))
    return development_env({**os.environ, **chosen})


def main() -> int:
    from fulfillment.migrate import upgrade

    env = stack_env()
    if not os.environ.get("DATABASE_URL"):
        fresh_database(env["DATABASE_URL"])
    upgrade(env["DATABASE_URL"])
    LOGS.mkdir(parents=True, exist_ok=True)
    python = str(BIN / "python")
    roles = ["sandbox", "web", "worker", "beat"]
    if not os.environ.get("REDIS_URL"):
        roles.insert(0, "redis")
    manager = Manager()
    for role in roles:
        argv = [python, "-m", "devstack.run", role, "--log", str(LOGS / f"{role}.log")]
        manager.add_process(role, f"exec {shlex.join(argv)}", env=env, cwd=str(ROOT))
    manager.add_process("demo", f"exec {shlex.join([python, '-m', 'devstack.demo'])}", env=env, cwd=str(ROOT))
    print(f"up: logs in {LOGS}; Ctrl-C stops everything", flush=True)
    try:
        manager.loop()
    finally:
        STACK_ENV.unlink(missing_ok=True)
    return manager.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
