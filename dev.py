#!/usr/bin/env python3
"""`python3 dev.py up` runs everything with a demo, `python3 dev.py test` runs the suite, and
`python3 dev.py flask COMMAND ...` runs an operator command (create-operator, connect-shop, set-stock, migrate, ...)
with the same development settings as the running stack.

Needs only Python 3.11+: it creates `.venv`, installs the project into it when pyproject.toml changed, and
runs the rest inside it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".installed-from"
COMMANDS = {"up": ["devstack.up"], "test": ["devstack.test"], "flask": ["devstack.run", "flask"]}


def ensure_venv() -> None:
    if not PYTHON.exists():
        print("dev: creating .venv", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    print("dev: installing packages into .venv (first run takes a minute)", flush=True)
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "install", "-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(wanted)


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__)
        return 2
    ensure_venv()
    command, rest = sys.argv[1], sys.argv[2:]
    os.chdir(ROOT)
    # Replaced, not waited on: Ctrl-C and SIGTERM reach the stack's supervisor itself, which stops every process.
    os.execv(PYTHON, [str(PYTHON), "-m", *COMMANDS[command], *rest])  # noqa: S606 - our own venv


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
