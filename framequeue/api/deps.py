"""Where routes find the service: on the app's state, set once by the app factory."""

from __future__ import annotations

from fastapi import Request

from framequeue.service import JobService


def service_of(request: Request) -> JobService:
    service: JobService = request.app.state.service
    return service
