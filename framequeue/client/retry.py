"""When the client sends a call again: the Retry-After header read, and the backoff rule. Both are pure (no
sleeping, no clock or random source of their own), so they are table-tested without waiting."""

from __future__ import annotations

import email.utils
import math
from dataclasses import dataclass

#: statuses that say "not now": too many requests, unavailable (a draining or restarting API, a backend down)
RETRY_STATUSES: frozenset[int] = frozenset({429, 503})


def parse_retry_after(value: str | None, now_s: float) -> float | None:
    """Seconds to wait that a Retry-After header asks for: delay-seconds or an HTTP-date (RFC 9110 10.2.3),
    measured from now_s (epoch seconds); a date already past is 0. None when the header is absent or
    malformed."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # an HTTP-date is GMT by definition
        return None
    return max(0.0, moment.timestamp() - now_s)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter, honouring the server's Retry-After."""

    #: tries in all, the first included (1: never retry)
    max_attempts: int = 4
    #: backoff before the first retry when the server names no delay; doubled for each retry after it
    backoff_s: float = 0.5
    #: the longest one wait may be: a backoff is capped at it, and a Retry-After asking more is not waited
    #: for (the error is raised at once, carrying the delay)
    max_wait_s: float = 30.0

    def delay_s(self, attempt: int, retry_after_s: float | None, rand: float) -> float | None:
        """The wait before the next try after try `attempt` (1-based) failed in a way worth retrying; None to
        give up. retry_after_s is the server's ask (None: it named none); rand is uniform in [0, 1) and
        spreads clients apart: a Retry-After gets up to 10 % added, a backoff is drawn from its upper half
        ("equal jitter", so no retry comes at once)."""
        if attempt >= self.max_attempts:
            return None
        if retry_after_s is not None:
            if retry_after_s > self.max_wait_s:
                return None
            return min(self.max_wait_s, retry_after_s * (1.0 + 0.1 * rand))
        cap_s = min(self.max_wait_s, self.backoff_s * 2.0 ** (attempt - 1))
        return cap_s / 2.0 * (1.0 + rand)


#: the clients' policy unless given one
DEFAULT_RETRY = RetryPolicy()
#: the policy of a client built with retry=None
NO_RETRY = RetryPolicy(max_attempts=1)
