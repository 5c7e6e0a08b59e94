"""Where routes find the service: on the app's state, set once by the app factory."""

from __future__ import annotations

from fastapi import Request

from framequeue.invocations import Invocations
from framequeue.service import JobService


def service_of(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service


def invocations_of(request: Request) -> Invocations:
    invocations: Invocations = request.app.state.invocations
    return invocations
