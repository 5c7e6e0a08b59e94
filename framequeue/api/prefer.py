"""The `Prefer: wait=N` request header (RFC 7240) of POST /v1/jobs: answer with the finished job when it ends
within N seconds. N above MAX_WAIT_S is clamped to it (Preference-Applied says what was honoured); a wait that
is not a whole number of seconds is refused (400 invalid_params) rather than silently ignored."""

from __future__ import annotations

from framequeue.errors import InvalidParams

#: the longest a submit waits for its job, seconds
MAX_WAIT_S = 60


def wait_s(header: str | None) -> int | None:
    """The seconds a `Prefer` header asks a submit to wait (clamped to MAX_WAIT_S), or None when it asks for
    no wait. Other preferences (respond-async, return=…) are ignored; a repeated wait keeps the first."""
    if header is None:
        return None
    for pref in header.split(","):
        token = pref.split(";", 1)[0]  # `wait=5; foo`: the parameters of a preference are ignored
        name, sep, value = token.partition("=")
        if name.strip().lower() != "wait":
            continue
        value = value.strip().strip('"')
        if not sep or not value.isascii() or not value.isdigit():
            raise InvalidParams(f"Prefer: wait must be a whole number of seconds 0..{MAX_WAIT_S} (RFC 7240), "
                                f"not {token.strip()!r}")
        return min(int(value), MAX_WAIT_S)
    return None
