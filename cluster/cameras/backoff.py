"""Delays between reconnection attempts: exponential, capped, jittered.

Exponential so that a dead source costs little; capped so that a source that comes back is
picked up soon; jittered so that a hundred cameras behind one failed switch do not all retry
in the same instant. The random source is injectable so tests can pin the delays.
"""

import random

from cluster.cameras.config import BackoffConfig


class Backoff:
    """The n-th delay is min(max, initial * multiplier**n), cut by a random fraction up to `jitter`."""

    def __init__(self, config: BackoffConfig, rng: random.Random | None = None) -> None:
        self.config = config
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call counts one more attempt."""
        config = self.config
        base = min(config.max_s, config.initial_s * config.multiplier**self._attempt)
        if base < config.max_s:
            self._attempt += 1
        return base * (1.0 - config.jitter * self._rng.random())

    def reset(self) -> None:
        """Start again from the initial delay (after a connection that worked)."""
        self._attempt = 0
