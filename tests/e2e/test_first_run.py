"""A new user's first runs: `python3 dev.py up` in a copy of the repository reaches `demo: K/K`, Ctrl-C (SIGINT to
its process group, as a terminal sends) or SIGTERM leaves none of its processes behind, and the next run in the
same folder gets there again.

The copy is this working tree without .venv and var/; its .venv is a link to this one's, so the test does not
spend minutes installing packages (dev.py finds the virtualenv up to date and uses it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.processes import ROOT, free_port
from devstack.wait import wait_for

TALLY = re.compile(r"demo: (\d+)/(\d+) fulfillment orders fulfilled")
# What a terminal's environment would not have: the suite's own Redis and database.
NOT_INHERITED = ("REDIS_URL", "DATABASE_URL", "APP_URL", "STORE_BASE_URL", "SANDBOX_PUBLIC_URL")


@pytest.fixture(scope="module")
def copy(tmp_path_factory) -> Path:
    if os.environ.get("DATABASE_URL", "").startswith("postgresql"):
        pytest.skip("dev.py up does not use the suite's database: this runs once, on the SQLite pass")
    target = tmp_path_factory.mktemp("first-run") / "repo"
    shutil.copytree(
        ROOT,
        target,
        symlinks=True,
        ignore=shutil.ignore_patterns(".venv", "var", ".git", "__pycache__", ".pytest_cache", ".ruff_cache"),
    )
    (target / ".venv").symlink_to(Path(sys.executable).resolve().parent.parent, target_is_directory=True)
    if not (target / ".venv" / ".installed-from").exists():
        pytest.skip("the virtualenv was not made by dev.py")
    return target


def processes_in(folder: Path) -> list[str]:
    """The processes (pid and command line) whose working directory is inside `folder`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        if cwd == folder or folder in cwd.parents:
            found.append(f"{entry.name}: {cmdline.strip()}")
    return found


def up(folder: Path, log: Path) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items() if key not in NOT_INHERITED}
    env.update(
        DEMO_ORDERS="2",
        APP_PORT=str(free_port()),
        SANDBOX_PORT=str(free_port()),
        REDIS_PORT=str(free_port()),
        SWEEP_INTERVAL_S="5",
    )
    with open(log, "wb") as out:
        # A process group of its own, as a shell gives a foreground job.
        return subprocess.Popen(
            ["python3", "dev.py", "up"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def reach_the_end(run: subprocess.Popen, log: Path) -> str:
    def finished() -> str | None:
        assert run.poll() is None, f"dev.py up ended early:\n{log.read_text(errors='replace')}"
        tallies = TALLY.findall(log.read_text(errors="replace"))
        return next((f"{k}/{n}" for k, n in tallies if k == n and int(n) > 0), None)

    try:
        return wait_for(finished, timeout=180, interval=0.5, what="demo: K/K")
    except AssertionError:
        os.killpg(run.pid, signal.SIGKILL)
        raise


def stop(run: subprocess.Popen, folder: Path, log: Path, sig: int, whole_group: bool) -> None:
    """Send `sig` (to the process group, or to dev.py alone) and check that nothing of the run is left."""
    if whole_group:
        os.killpg(run.pid, sig)
    else:
        os.kill(run.pid, sig)
    try:
        run.wait(timeout=60)
        # A moment for the kernel to reap the last of what the supervisor stopped.
        wait_for(lambda: not processes_in(folder), timeout=15, what="no process left")
    except (AssertionError, subprocess.TimeoutExpired):
        left = processes_in(folder)
        for line in left:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        pytest.fail(f"left running after {signal.Signals(sig).name}: {left}\n{log.read_text(errors='replace')[-3000:]}")


def test_dev_up_reaches_the_end_stops_clean_on_ctrl_c_and_sigterm_and_runs_again(copy, tmp_path):
    # Ctrl-C as a terminal sends it, SIGTERM as a service manager sends it, then SIGTERM to dev.py alone; each
    # run after the first starts in the folder the one before left.
    for attempt, (sig, whole_group) in enumerate(
        [(signal.SIGINT, True), (signal.SIGTERM, True), (signal.SIGTERM, False)], start=1
    ):
        log = tmp_path / f"up-{attempt}.log"
        run = up(copy, log)
        reach_the_end(run, log)
        stop(run, copy, log, sig, whole_group)
