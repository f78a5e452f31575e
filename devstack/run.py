"""`python -m devstack.run ROLE [--log FILE]`: one process of the local stack, with the development settings.

ROLE is redis, sandbox, web, worker or beat (what Procfile.dev lists, and what `dev.py up` runs under honcho), or
`flask ARGS...` for the operator commands (`python3 dev.py flask ...`). Whatever the environment already sets wins
over the development settings; `dev.py up` writes the addresses it chose to `var/stack.env` while it runs, so the
operator commands reach the stack that is running.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from devstack.processes import (
    BIN,
    ROOT,
    beat_command,
    redis_command,
    sandbox_command,
    web_command,
    worker_command,
)

VAR = ROOT / "var"
STACK_ENV = VAR / "stack.env"
ROLES = ("redis", "sandbox", "web", "worker", "beat", "flask")


def development_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The one set of development settings: the app's own defaults (fulfillment.config) for the secrets and the
    database, handed to the sandbox too so that both sides sign and check with the same client secret."""
    from fulfillment.config import Config

    env = dict(os.environ if environ is None else environ)
    if STACK_ENV.exists():
        for line in STACK_ENV.read_text().splitlines():
            key, _, value = line.partition("=")
            env.setdefault(key.strip(), value.strip())
    app = Config()
    env.setdefault("SHOPIFY_API_KEY", app.shopify_api_key)
    env.setdefault("SHOPIFY_API_SECRET", app.shopify_api_secret)
    env.setdefault("SECRET_KEY", app.secret_key)
    env.setdefault("DATABASE_URL", app.database_url)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6390/0")  # not 6379: a machine's own Redis is often there
    env.setdefault("APP_URL", "http://127.0.0.1:8000")
    env.setdefault("STORE_BASE_URL", "http://127.0.0.1:8700")
    env.setdefault("SANDBOX_PUBLIC_URL", env["STORE_BASE_URL"])
    # The sandbox, like the store, takes a callback URL only on the app's own host.
    env.setdefault("SANDBOX_APP_HOSTS", urlsplit(env["APP_URL"]).hostname or "")
    env.setdefault("PICK_DELAY_S", "1")
    env.setdefault("PACK_DELAY_S", "1")
    env.setdefault("SWEEP_INTERVAL_S", "15")
    env.setdefault("SIMULATOR_DEFAULT_STOCK", "100")
    env["PYTHONUNBUFFERED"] = "1"
    # This folder's code first, even where the virtualenv's install points at another checkout.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _port(url: str) -> int:
    port = urlsplit(url).port
    if port is None:
        raise SystemExit(f"no port in {url!r}")
    return port


def command(role: str, env: Mapping[str, str], args: list[str]) -> list[str]:
    if role == "redis":
        (VAR / "redis").mkdir(parents=True, exist_ok=True)
        return redis_command(_port(env["REDIS_URL"]), VAR / "redis")
    if role == "sandbox":
        return sandbox_command(_port(env["STORE_BASE_URL"]))
    if role == "web":
        return web_command(_port(env["APP_URL"]))
    if role == "worker":
        return worker_command()
    if role == "beat":
        VAR.mkdir(exist_ok=True)
        return beat_command(VAR / "celerybeat-schedule")
    return [str(BIN / "flask"), "--app", "app", *args]


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ROLES:
        raise SystemExit(f"usage: python -m devstack.run {{{','.join(ROLES)}}} [--log FILE]")
    role, args = argv[0], argv[1:]
    log: Path | None = None
    if role != "flask" and args[:1] == ["--log"] and len(args) == 2:
        log = Path(args[1])
    env = development_env()
    os.chdir(ROOT)
    if role == "web":
        # The release step of a platform: bring the database to the newest schema before serving.
        from fulfillment.migrate import upgrade

        upgrade(env["DATABASE_URL"])
    argv = command(role, env, args)
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    os.execve(argv[0], argv, env)  # noqa: S606 - the virtualenv's own programs


if __name__ == "__main__":
    main(sys.argv[1:])
