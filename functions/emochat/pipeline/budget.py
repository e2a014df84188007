"""One deadline per event: each call the pipeline makes gets the smaller of its own timeout and the
time left before the deadline, so a run provably ends inside the function timeout.

Pure: the clock is a port (the system clock in production, a fake one in the unit tests).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock epoch seconds: leases stored in documents."""
        ...

    def monotonic(self) -> float:
        """Seconds for measuring durations and deadlines."""
        ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


@dataclass(frozen=True)
class Deadline:
    """When the event's work must be over, on `clock`'s monotonic time."""

    at: float
    clock: Clock = SYSTEM_CLOCK

    @classmethod
    def after(cls, seconds: float, clock: Clock = SYSTEM_CLOCK) -> Deadline:
        return cls(clock.monotonic() + seconds, clock)

    def remaining(self) -> float:
        return self.at - self.clock.monotonic()

    def allow(self, own_timeout_s: float, margin_s: float = 0.0) -> float:
        """How long one call may take: its own timeout, or the time left less a margin (never < 0)."""
        return max(0.0, min(own_timeout_s, self.remaining() - margin_s))

    def leaves(self, wait_s: float, then_s: float) -> bool:
        """Whether waiting `wait_s` still leaves `then_s` for one more attempt."""
        return wait_s + then_s <= self.remaining()

    def within(self, seconds: float) -> Deadline:
        """The earlier of this deadline and `seconds` from now: a call's own budget inside the event's."""
        return Deadline(min(self.at, self.clock.monotonic() + seconds), self.clock)
