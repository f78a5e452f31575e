"""Several hosts on this one machine, for the runs that lose one: Linux network namespaces on a bridge.

`Network` makes one namespace per host, each with one address on a private /24 and its own loopback, all joined by
a bridge that lives in a namespace of its own (the switch); this process reaches them through one more link into
the switch. No namespace has a route off that /24, so traffic stays between the namespaces and this machine, and
the machine's own PostgreSQL and Redis (on its loopback) are out of reach. `cut(host)` takes a host's link down.
Namespace names carry the run's pid (`fs<pid>n<k>-<host>`): a run first removes those of earlier runs whose
process is gone, and `close()` (also on Ctrl-C, SIGTERM or a failed start) removes its own.

`start_hosts` runs the whole system on them: a PostgreSQL cluster and a Redis server of its own on one host, the
sandbox store on one, gunicorn on one, Celery workers on the rest with beat on the first of them, each with its
command line from `devstack.processes`. Needs root and `ip` (iproute2); `can_make_namespaces()` says whether
this machine can.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from devstack.processes import (
    Process,
    Stack,
    beat_command,
    initdb_command,
    postgres_command,
    redis_command,
    sandbox_command,
    wait_http,
    web_command,
    worker_command,
)
from devstack.system import System
from devstack.wait import wait_for

NAME = re.compile(r"^fs(\d+)n\d+-")
_runs = itertools.count(1)
CELERY_APP = "workers"  # BROKER_VISIBILITY_TIMEOUT_S in the environment sets how soon a lost host's tasks move
POSTGRES_USER = "postgres"  # PostgreSQL refuses to run as root
PORTS = {"postgres": 5432, "redis": 6379, "sandbox": 8700, "web": 8000}


class NamespacesUnavailable(RuntimeError):
    """This machine cannot make network namespaces (not root, no `ip`, or the kernel refuses)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    ip = shutil.which("ip") or "/usr/sbin/ip"
    return subprocess.run([ip, *args], capture_output=True, text=True, check=check)  # noqa: S603


def can_make_namespaces() -> str | None:
    """None when network namespaces can be made here; otherwise why not, in one line."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not (shutil.which("ip") or Path("/usr/sbin/ip").exists()):
        return "no `ip` command (iproute2)"
    probe = f"fs{os.getpid()}n0-probe"
    try:
        made = _ip("netns", "add", probe, check=False)
        if made.returncode != 0:
            return f"`ip netns add` failed: {made.stderr.strip()}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _namespaces() -> list[str]:
    listed = _ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in listed.splitlines() if line.strip()]


def _empty_namespace(name: str) -> None:
    """SIGKILL whatever still runs in the namespace (all of it started by a run of this harness), then delete it."""
    for pid in _ip("netns", "pids", name, check=False).stdout.split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    _ip("netns", "del", name, check=False)


def stale(names: list[str], alive: Callable[[int], bool] = _pid_alive) -> list[str]:
    """The names made by runs of this harness whose process is gone; other names (another tool's) are left alone."""
    return [n for n in names if (m := NAME.match(n)) and not alive(int(m.group(1)))]


def remove_stale_namespaces() -> list[str]:
    """Remove the namespaces of earlier runs whose process is gone (a crash, a SIGKILL); returns their names."""
    names = stale(_namespaces())
    for name in names:
        _empty_namespace(name)
    # And their PostgreSQL clusters, kept outside the run's own folder.
    folders = {f.name: f for f in Path(tempfile.gettempdir()).glob("fs*n*-pg-*")}
    for name in stale(list(folders)):
        shutil.rmtree(folders[name], ignore_errors=True)
    return names


def _free_subnet() -> str:
    """A 10.213.X.0/24 that nothing on this machine routes yet (another run may hold one)."""
    routes = _ip("-4", "route", "show", "table", "all", check=False).stdout
    start = os.getpid() % 250
    for step in range(250):
        prefix = f"10.213.{(start + step) % 250}"
        if f"{prefix}." not in routes:
            return prefix
    raise NamespacesUnavailable("no free 10.213.X.0/24 subnet")


@dataclass
class Network:
    """The hosts' namespaces and their bridge; `close()` removes them all (and whatever still runs inside)."""

    prefix: str  # fs<pid>n<k>
    subnet: str  # 10.213.X
    hosts: dict[str, str] = field(default_factory=dict)  # host -> address
    namespaces: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, hosts: list[str]) -> Network:
        reason = can_make_namespaces()
        if reason:
            raise NamespacesUnavailable(reason)
        remove_stale_namespaces()
        network = cls(f"fs{os.getpid()}n{next(_runs)}", _free_subnet())
        try:
            network._build(hosts)
        except BaseException:
            network.close()
            raise
        return network

    @property
    def switch(self) -> str:
        return f"{self.prefix}-switch"

    @property
    def driver_address(self) -> str:
        """This process's address on the hosts' network."""
        return f"{self.subnet}.1"

    def namespace(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    def _add_namespace(self, name: str) -> None:
        _ip("netns", "add", name)
        self.namespaces.append(name)
        _ip("-n", name, "link", "set", "dev", "lo", "up")

    def _build(self, hosts: list[str]) -> None:
        self._add_namespace(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "dev", "br0", "up")
        # This process's own link into the switch; removed with the switch's namespace.
        _ip("link", "add", self.prefix, "type", "veth", "peer", "name", "driver", "netns", self.switch)
        self._plug("driver")
        _ip("addr", "add", f"{self.driver_address}/24", "dev", self.prefix)
        _ip("link", "set", "dev", self.prefix, "up")
        for index, host in enumerate(hosts, start=2):
            namespace = self.namespace(host)
            self._add_namespace(namespace)
            port = f"p{index}"
            veth = f"link add name eth0 netns {namespace} type veth peer name {port} netns {self.switch}"
            _ip(*veth.split())
            self._plug(port)
            address = f"{self.subnet}.{index}"
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "dev", "eth0", "up")
            self.hosts[host] = address

    def _plug(self, port: str) -> None:
        _ip("-n", self.switch, "link", "set", "dev", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", "dev", port, "up")

    def run_in(self, host: str, argv: list[str], user: str | None = None) -> list[str]:
        """The command line that runs `argv` on `host` (as `user` when given: the process is started by root)."""
        as_user = ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--"] if user else []
        return [shutil.which("ip") or "/usr/sbin/ip", "netns", "exec", self.namespace(host), *as_user, *argv]

    def cut(self, host: str) -> None:
        """Take the host's link down: nothing it sends arrives, nothing sent to it is answered."""
        _ip("-n", self.namespace(host), "link", "set", "dev", "eth0", "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.namespace(host), "link", "set", "dev", "eth0", "up")

    def close(self) -> None:
        for name in reversed(self.namespaces):
            _empty_namespace(name)
        self.namespaces.clear()


@dataclass(frozen=True)
class Layout:
    """Which host runs what; a host may run several parts. Beat runs on the first worker host, only there."""

    db: str = "db"  # PostgreSQL and Redis
    sandbox: str = "store"
    web: str = "web"
    workers: tuple[str, ...] = ("worker-1", "worker-2")

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys([self.db, self.sandbox, self.web, *self.workers]))

    @property
    def beat(self) -> str:
        return self.workers[0]


@dataclass
class MultiHostSystem(System):
    """`System` on several hosts: `cut_host` takes a host off the network and SIGKILLs its processes,
    `restore_host` brings the link back and starts them again; `stop()` also removes the hosts."""

    network: Network | None = None
    layout: Layout = field(default_factory=Layout)
    host_processes: dict[str, list[Process]] = field(default_factory=dict)
    postgres_dir: Path | None = None

    def start_on(self, host: str, name: str, argv: list[str], user: str | None = None) -> Process:
        process = self.stack.start(name, self.network.run_in(host, argv, user))
        self.host_processes.setdefault(host, []).append(process)
        return process

    def start_workers(self) -> None:
        """A Celery worker on every worker host, and beat on the first of them."""
        for host in self.layout.workers:
            self.workers.append(self.start_on(host, host, worker_command(host, self.worker_concurrency, CELERY_APP)))
        self.start_on(self.layout.beat, "beat", beat_command(self.workdir / "celerybeat-schedule", CELERY_APP))

    @property
    def host_count(self) -> int:
        return len(self.layout.hosts)

    def cut_host(self, host: str) -> None:
        """The host is lost: its link goes down first (nothing more gets out), then every process on it dies."""
        self.network.cut(host)
        for process in self.host_processes.get(host, []):
            process.kill()
            self.stack.processes.remove(process)

    def restore_host(self, host: str) -> None:
        """The link comes back and the host's processes start again, with the same command lines."""
        self.network.restore(host)
        dead, self.host_processes[host] = self.host_processes.get(host, []), []
        for process in dead:
            restarted = self.stack.start(process.name, process.argv)
            self.host_processes[host].append(restarted)
            if process in self.workers:
                self.workers[self.workers.index(process)] = restarted

    def stop(self, keep_files: bool = False) -> None:
        # This process's own connections first, while the server still answers their goodbye.
        if self._context is not None:
            self._context.db.dispose()
            self._context = None
        try:
            # Everything here is thrown away with the hosts, the database included: a graceful stop buys nothing.
            # PostgreSQL alone gets its fast shutdown, which removes its shared memory (a SIGKILL leaves it).
            for process in reversed(self.stack.processes):
                if process.name == "postgres" and process.alive:
                    process.signal(signal.SIGINT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.popen.wait(10)
                process.kill()
            self.stack.processes.clear()
        finally:
            if self.network is not None:
                self.network.close()
            if self.postgres_dir is not None:
                shutil.rmtree(self.postgres_dir, ignore_errors=True)
            if not keep_files:
                shutil.rmtree(self.workdir, ignore_errors=True)


def _start_postgres(system: MultiHostSystem, address: str, max_connections: int) -> str:
    import psycopg

    # Owned by the user PostgreSQL runs as, outside this run's folder (which only root may enter).
    system.postgres_dir = Path(tempfile.mkdtemp(prefix=f"{system.network.prefix}-pg-"))
    shutil.chown(system.postgres_dir, POSTGRES_USER, POSTGRES_USER)
    data = system.postgres_dir / "data"
    with open(system.workdir / "log" / "initdb.log", "wb") as log:
        subprocess.run(  # noqa: S603 - the distribution's own initdb
            [
                "setpriv",
                f"--reuid={POSTGRES_USER}",
                f"--regid={POSTGRES_USER}",
                "--init-groups",
                "--",
                *initdb_command(data),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            check=True,
        )
    # Every host of this run's network may connect, as a managed database's private network allows.
    with open(data / "pg_hba.conf", "a") as hba:
        hba.write(f"host all all {system.network.subnet}.0/24 trust\n")
    system.start_on(
        system.layout.db, "postgres", postgres_command(data, address, PORTS["postgres"], max_connections), POSTGRES_USER
    )
    server = f"host={address} port={PORTS['postgres']} user=postgres dbname=postgres connect_timeout=2"

    def create_database() -> bool:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CREATE DATABASE fulfillment")
        return True

    wait_for(create_database, 30, 0.3, "postgres", (psycopg.OperationalError,))
    return f"postgresql+psycopg://postgres@{address}:{PORTS['postgres']}/fulfillment"


def start_hosts(
    workdir: Path,
    settings: Mapping[str, str],
    *,
    layout: Layout | None = None,
    concurrency: int = 2,
    web_workers: int = 2,
    max_connections: int = 200,
    start_workers: bool = True,
) -> MultiHostSystem:
    """Make the hosts and start the system on them (PostgreSQL and Redis, sandbox, web, a worker on every worker
    host, beat on the first), with `settings` over this process's environment. Logs go to `workdir/log`. Whatever
    fails to start, nothing is left running and no namespace is left behind. `start_workers=False` leaves the
    workers and beat to `system.start_workers()`: a run that installs many shops first does so without the sweeps
    of the shops already installed competing with the installs."""
    import redis

    from fulfillment.migrate import upgrade

    layout = layout or Layout()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "log").mkdir(exist_ok=True)
    network = Network.create(layout.hosts)
    system = MultiHostSystem(
        Stack({}, workdir / "log"), {}, workdir, worker_concurrency=concurrency, network=network, layout=layout
    )
    try:
        db, store, web = (network.hosts[h] for h in (layout.db, layout.sandbox, layout.web))
        database_url = _start_postgres(system, db, max_connections)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": f"redis://{db}:{PORTS['redis']}/0",
            "APP_URL": f"http://{web}:{PORTS['web']}",
            "STORE_BASE_URL": f"http://{store}:{PORTS['sandbox']}",
            "SANDBOX_PUBLIC_URL": f"http://{store}:{PORTS['sandbox']}",
            # The store takes a callback URL only on the app's own host.
            "SANDBOX_APP_HOSTS": web,
            "PYTHONUNBUFFERED": "1",
            **settings,
        }
        system.env.update(env)
        system.stack.env.update(env)
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        system.start_on(layout.db, "redis", redis_command(PORTS["redis"], redis_dir, db))
        client = redis.Redis.from_url(env["REDIS_URL"], socket_connect_timeout=2)
        wait_for(client.ping, 20, 0.2, "redis", (redis.RedisError,))
        client.close()
        upgrade(database_url)
        system.start_on(layout.sandbox, "sandbox", sandbox_command(PORTS["sandbox"], store))
        wait_http(f"{env['STORE_BASE_URL']}/_sandbox/healthz")
        system.start_on(layout.web, "web", web_command(PORTS["web"], web_workers, web))
        wait_http(f"{env['APP_URL']}/healthz")
        if start_workers:
            system.start_workers()
    except BaseException:
        system.stop(keep_files=True)
        raise
    return system
