"""Who is calling: the API key of a request (`Authorization: Bearer fq_…`, or `X-Api-Key`) checked against
the job store, its scope against the route's, and the tenant's rate limit.

A missing, malformed, unknown or revoked key all answer the same 401 (nothing to tell them apart by).
While the job store holds no key at all and FQ_AUTH is not `required`, every request runs as tenant
`default` with every scope (single-tenant development mode); the first key created ends that mode for
good, within a second, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from framequeue.config import Settings
from framequeue.errors import ApiKeyNotFound, Forbidden, RateLimited, Unauthorized
from framequeue.jobstore import ApiKeyStore
from framequeue.tenants.auth import DEV_PRINCIPAL, Principal, Scope, key_id, verify
from framequeue.tenants.ratelimit import RateLimiter

log = logging.getLogger("framequeue.api")

#: the one answer to every request without a usable key
UNAUTHORIZED = "a valid API key is required: send it as 'Authorization: Bearer fq_…' or 'X-Api-Key: fq_…'"
#: how often, at most, an open API checks whether a key has appeared
KEYS_RECHECK_S = 1.0
DEV_MODE_WARNING = (
    "the API is OPEN: no API key exists, so every request runs as tenant 'default' with every scope "
    "(single-tenant development mode). Create a key to turn authentication on: "
    "framequeue keys create --tenant NAME --scope admin (or set FQ_AUTH=required)"
)


class Authenticator:
    def __init__(self, store: ApiKeyStore, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._required = settings.auth.strip().lower() == "required"
        self._clock = clock
        self._keys_seen = False
        self._checked_at = -KEYS_RECHECK_S
        self._lock = threading.Lock()
        self.limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_burst)

    def open(self) -> bool:
        """Development mode: auth not required and no key ever created. Once a key is seen, never again."""
        if self._required or self._keys_seen:
            return False
        with self._lock:
            now = self._clock()
            if now - self._checked_at >= KEYS_RECHECK_S:
                self._keys_seen = self._store.has_api_keys()
                self._checked_at = now
            return not self._keys_seen

    def authenticate(self, presented: str | None) -> Principal:
        if self.open():
            return DEV_PRINCIPAL
        if not presented:
            raise Unauthorized(UNAUTHORIZED)
        row = None
        kid = key_id(presented)
        if kid is not None:
            try:
                row = self._store.get_api_key(kid)
            except ApiKeyNotFound:
                row = None
        if row is None or not verify(row, presented):
            raise Unauthorized(UNAUTHORIZED)
        return Principal(row.tenant, row.scopes, row.id)


#: the two ways to send a key, declared so the OpenAPI document names them (securitySchemes) on every route
#: that takes one; they only describe: presented_key reads the headers, Authenticator decides
BEARER = HTTPBearer(scheme_name="bearer", bearerFormat="fq_…", auto_error=False,
                    description="An API key as a bearer token: `Authorization: Bearer fq_…`")
API_KEY_HEADER = APIKeyHeader(name="X-Api-Key", scheme_name="apiKey", auto_error=False,
                              description="An API key in the X-Api-Key header (what boto3's event hook sends)")


def presented_key(request: Request) -> str | None:
    """The key a request carries; an Authorization header that is not a bearer token counts as malformed."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else ""
    return request.headers.get("x-api-key")


def require(scope: Scope, *, limited: bool = False) -> Any:
    """A route dependency giving the caller's Principal: 401 without a usable key, 403 when its scope is
    below `scope`, and, when `limited`, 429 past the tenant's rate (FQ_RATE_LIMIT_PER_S)."""

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _api_key: Annotated[str | None, Security(API_KEY_HEADER)],
    ) -> Principal:
        auth: Authenticator = request.app.state.auth
        principal = await run_in_threadpool(auth.authenticate, presented_key(request))
        if not principal.allows(scope):
            raise Forbidden(f"this key's scope is {principal.scope}; this call needs {scope}")
        if limited:
            wait_s = auth.limiter.take(principal.tenant)
            if wait_s is not None:
                raise RateLimited(
                    f"this tenant is over its rate of {auth.limiter.rate_per_s:g} requests per second",
                    retry_after_s=wait_s,
                )
        return principal

    return Depends(dependency)


#: the route dependencies, one per scope (module-level, so signatures make no calls)
READ = require("read")
SUBMIT = require("submit")
#: submit scope and the tenant's rate limit: uploads, submits, invocations
SUBMIT_LIMITED = require("submit", limited=True)
ADMIN = require("admin")
