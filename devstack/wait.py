"""The one way the harness waits: poll a check until it holds or a deadline passes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimedOut(AssertionError):
    """The check never held. An AssertionError, so a test that waits in vain fails rather than errors."""


def wait_for(
    check: Callable[[], T],
    timeout: float = 60,
    interval: float = 0.3,
    what: str = "condition",
    retrying: tuple[type[BaseException], ...] = (),
) -> T:
    """Poll until `check()` returns something truthy; return it. Waiting is not timing: no duration is asserted.

    Exceptions of the `retrying` types (a server not listening yet) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
        except retrying as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise WaitTimedOut(f"timed out waiting for {what}; last value: {last!r}")
        time.sleep(interval)
