"""Counts what a Celery worker process does, for `bench/work.py`: put this folder on PYTHONPATH (only the bench
does) and set WORK_USAGE_DIR. Nothing of the app is changed: SQLAlchemy's engine events count statements and
transactions, Celery's task signals sum the CPU time spent inside tasks. Each process writes its own figures to
`<WORK_USAGE_DIR>/<pid>.json` after every task. Other programs (web, beat, the sandbox) are left alone."""

import json
import os
import sys
import time

_DIR = os.environ.get("WORK_USAGE_DIR")


def _is_worker() -> bool:
    return bool(_DIR) and "worker" in sys.argv and any(a.endswith("celery") for a in sys.argv[:1])


if _is_worker():
    from celery.signals import task_postrun, task_prerun
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _usage = {"statements": 0, "transactions": 0, "task_cpu_s": 0.0, "tasks": {}}
    _started: dict[str, float] = {}
    # WORK_PROFILE=1: a cProfile of the time inside tasks, one file per process (`<pid>.prof`).
    _profile = None
    if os.environ.get("WORK_PROFILE"):
        import cProfile

        _profile = cProfile.Profile(time.process_time)  # CPU, not the waits

    def _statement(*_args, **_kwargs) -> None:
        _usage["statements"] += 1

    def _begin(*_args, **_kwargs) -> None:
        _usage["transactions"] += 1

    def _prerun(task_id=None, task=None, **_kwargs) -> None:
        _started[task_id] = time.process_time()
        if _profile is not None:
            _profile.enable()

    def _postrun(task_id=None, task=None, **_kwargs) -> None:
        if _profile is not None:
            _profile.disable()
            _profile.dump_stats(os.path.join(_DIR, f"{os.getpid()}.prof"))
        began = _started.pop(task_id, None)
        if began is not None:
            _usage["task_cpu_s"] += time.process_time() - began
        name = getattr(task, "name", "?")
        _usage["tasks"][name] = _usage["tasks"].get(name, 0) + 1
        path = os.path.join(_DIR, f"{os.getpid()}.json")
        with open(path + ".tmp", "w") as out:
            json.dump(_usage, out)
        os.replace(path + ".tmp", path)

    event.listen(Engine, "before_cursor_execute", _statement)
    event.listen(Engine, "begin", _begin)
    task_prerun.connect(_prerun, weak=False)
    task_postrun.connect(_postrun, weak=False)
