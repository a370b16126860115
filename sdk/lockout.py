"""Spoof lock-out: retrying must not wear a check down.

Every check has a small chance of accepting an attack; an attacker who may retry without limit
turns that into certainty. ``SpoofLockout`` counts SPOOF decisions; after ``max_spoofs`` within
``window_s`` seconds it locks for ``duration_s`` seconds, during which the session answers
UNCERTAIN with Reason.LOCKED_OUT without scoring anything. One SpoofLockout may be shared by
several sessions (pass it as ``LivenessSession(..., lockout=...)``) so a new session does not
reset it.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from sdk.errors import InputValidationError


@dataclass(frozen=True)
class LockoutConfig:
    #: SPOOF decisions within window_s that lock the session (0 disables the lock-out).
    max_spoofs: int = 3
    window_s: float = 60.0
    #: How long the lock lasts.
    duration_s: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_spoofs, bool) or not isinstance(self.max_spoofs, int) or self.max_spoofs < 0:
            raise InputValidationError(f"LockoutConfig.max_spoofs must be an integer >= 0, got {self.max_spoofs!r}")
        for name in ("window_s", "duration_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputValidationError(f"LockoutConfig.{name} must be a positive number of seconds, got {value!r}")

    @property
    def enabled(self) -> bool:
        return self.max_spoofs > 0


class SpoofLockout:
    """Thread-safe counter of SPOOF decisions with a lock window; ``clock`` is injectable for tests."""

    def __init__(self, config: LockoutConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config or LockoutConfig()
        self._clock = clock
        self._spoofs: deque[float] = deque()
        self._locked_until = -math.inf
        self._lock = threading.Lock()

    def remaining_s(self) -> float:
        """Seconds left of the current lock (0 when not locked)."""
        with self._lock:
            return max(0.0, self._locked_until - self._clock())

    @property
    def locked(self) -> bool:
        return self.remaining_s() > 0.0

    def record_spoof(self) -> bool:
        """Count one SPOOF decision; True when it starts a lock."""
        if not self.config.enabled:
            return False
        with self._lock:
            now = self._clock()
            self._spoofs.append(now)
            while self._spoofs and now - self._spoofs[0] > self.config.window_s:
                self._spoofs.popleft()
            if len(self._spoofs) >= self.config.max_spoofs:
                self._locked_until = now + self.config.duration_s
                self._spoofs.clear()  # the lock is the penalty for these; counting starts afresh after it
                return True
            return False

    def clear(self) -> None:
        """An administrator's reset."""
        with self._lock:
            self._spoofs.clear()
            self._locked_until = -math.inf
