"""One time budget shared by a call and its retries, measured on a clock that tests can replace.

Retrying a silent server with the full timeout each time turns ``timeout_seconds`` into a multiple
of itself. A ``Deadline`` makes the setting an upper bound on the whole call: each retry gets only
what is left of the budget, and a retry whose pause would leave too little of it is not made.
"""

from __future__ import annotations

import time
from typing import Protocol

# A retry left with less than this to wait for its answer is not worth making.
MIN_ATTEMPT_SECONDS = 0.1


class Clock(Protocol):
    """Where retry logic reads the time and pauses; tests pass one that only simulates both."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The process's monotonic clock and a real sleep."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class Deadline:
    """``seconds`` from its creation: all that one call may spend waiting, retries included."""

    def __init__(self, seconds: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self.seconds = float(seconds)
        self.clock = clock
        self._end = clock.monotonic() + self.seconds

    def remaining(self) -> float:
        """Seconds left of the budget, never negative."""
        return max(self._end - self.clock.monotonic(), 0.0)

    def allows_attempt_after(self, pause: float = 0.0) -> bool:
        """Whether an attempt after ``pause`` seconds would still have time to be answered."""
        return self.remaining() - pause >= MIN_ATTEMPT_SECONDS

    def pause(self, seconds: float) -> None:
        """Sleep before a retry, on this deadline's clock."""
        if seconds > 0:
            self.clock.sleep(seconds)
