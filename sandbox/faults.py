"""Per-shop fault injection: how often the sandbox misbehaves like a real store can, with a seedable RNG so a
test can replay the same run. Everything defaults to 0 (a well-behaved store).

Callback and webhook faults (drop / duplicate / delay) are applied in `notify.py`; GraphQL faults (server
error, timeout, lost response) in `graphql_api.py`, to the app's requests only.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any

RATES = ("drop_rate", "duplicate_rate", "error_rate", "timeout_rate", "lost_response_rate")


@dataclass
class Faults:
    drop_rate: float = 0.0  # callbacks / webhooks not sent at all
    duplicate_rate: float = 0.0  # sent twice (webhooks with the same X-Shopify-Webhook-Id)
    delay_s: float = 0.0  # wait before each send
    error_rate: float = 0.0  # GraphQL answers HTTP 500/502/503 without executing
    timeout_rate: float = 0.0  # GraphQL sleeps `timeout_s` (past the client's timeout) and executes nothing
    timeout_s: float = 30.0
    lost_response_rate: float = 0.0  # GraphQL executes, then answers 502 (the mutation did apply)
    # The next N answers to each named operation are lost after it executed ({"InventorySetQuantities": 1}): a
    # lost answer on cue, for tests that need that exact request to go unanswered.
    lose_answers: dict[str, int] = field(default_factory=dict)
    seed: int | None = None
    _rng: random.Random = field(default_factory=random.Random, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def roll(self, rate: float) -> bool:
        """True with probability `rate` (never touches the RNG for a zero rate, so seeds replay exactly)."""
        if rate <= 0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def choice(self, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._rng.choice(options)

    def as_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def take_lost_answer(self, operation: str | None) -> bool:
        """True (once per count) when the answer to `operation` is to be lost."""
        with self._lock:
            left = self.lose_answers.get(operation or "", 0)
            if left <= 0:
                return False
            self.lose_answers[operation or ""] = left - 1
            return True

    def update(self, values: dict[str, Any]) -> None:
        """Apply the given settings; unknown keys or rates outside 0..1 raise ValueError."""
        known = {f.name for f in fields(self) if not f.name.startswith("_")}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        for key, value in values.items():
            if key == "lose_answers":
                if not isinstance(value, dict) or not all(
                    isinstance(k, str) and isinstance(n, int) and n >= 0 for k, n in value.items()
                ):
                    raise ValueError("lose_answers maps operation names to counts")
                with self._lock:
                    self.lose_answers = dict(value)
                continue
            if key == "seed":
                self.seed = None if value is None else int(value)
                continue
            number = float(value)
            if key in RATES and not 0.0 <= number <= 1.0:
                raise ValueError(f"{key} must be between 0 and 1")
            if number < 0:
                raise ValueError(f"{key} must not be negative")
            setattr(self, key, number)
        if "seed" in values:
            with self._lock:
                self._rng = random.Random(self.seed)
