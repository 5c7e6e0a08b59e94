"""The delivery service: a tenant's view of its webhook events (list a job's, replay one) and of the URLs a
410 Gone disabled (list, enable again). Used by the API and the CLI alike; the dispatcher that sends the
events is notify.outbox."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from framequeue.errors import DeliveryNotFound, JobNotFound, NotFound, WebhookDisabled
from framequeue.jobs import Job, iso
from framequeue.jobstore import DeliveryStore
from framequeue.notify.outbox import Delivery
from framequeue.tenants.auth import Principal

#: the caller's job, or JobNotFound when it is missing or another tenant's (JobService.owned)
Owned = Callable[[str, Principal], Job]


class DeliveryService:
    def __init__(self, store: DeliveryStore, owned: Owned, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._owned = owned
        self._clock = clock

    def deliveries(self, job_id: str, caller: Principal) -> dict[str, Any]:
        """The caller's job's webhook events (and documents) with their delivery state; never a secret."""
        self._owned(job_id, caller)
        return {"deliveries": [delivery_record(d) for d in self._store.list_deliveries(job_id)]}

    def replay(self, event_id: str, caller: Principal) -> dict[str, Any]:
        """Deliver an event again now, with the same webhook-id (its attempts count on). Another tenant's
        event answers as a missing one; an event for a disabled endpoint is refused until it is enabled."""
        try:
            delivery = self._store.get_delivery(event_id)
            self._owned(delivery.job_id, caller)
        except (DeliveryNotFound, JobNotFound):
            raise DeliveryNotFound("no such delivery") from None
        if delivery.url.startswith(("https://", "http://")):
            check_not_disabled(self._store, caller.tenant, delivery.url)
        return delivery_record(self._store.replay_delivery(event_id, self._clock()))

    def disabled_webhooks(self, caller: Principal) -> dict[str, Any]:
        return {
            "disabled_webhooks": [
                {"url": d.url, "disabled_at": iso(d.disabled_at_s), "event_id": d.event_id}
                for d in self._store.list_disabled_webhooks(caller.tenant)
            ]
        }

    def enable_webhook(self, url: str, caller: Principal) -> dict[str, Any]:
        """Send to a URL disabled by a 410 again (events written from now on; replay older ones)."""
        if not self._store.enable_webhook(caller.tenant, url):
            raise NotFound("that webhook URL is not disabled for this tenant")
        return {"url": url, "enabled": True}


def check_not_disabled(store: DeliveryStore, tenant: str, url: str) -> None:
    """WebhookDisabled when the tenant's URL answered 410 Gone and was not enabled since: no event may be
    written for it (a submit naming it, a replay). The message says how to enable it again."""
    disabled = store.webhook_disabled(tenant, url)
    if disabled is not None:
        raise WebhookDisabled(
            f"this webhook URL is disabled: it answered 410 Gone at {iso(disabled.disabled_at_s)} (event "
            f"{disabled.event_id}); enable it again with POST /v1/webhooks/enable or "
            "`framequeue webhooks enable URL`"
        )


def delivery_record(d: Delivery) -> dict[str, Any]:
    """An outbox event as its job's owner sees it: no secret, no payload (the job record has the data)."""
    try:
        kind = json.loads(d.payload).get("type")
    except (ValueError, AttributeError):
        kind = None
    state = "delivered" if d.delivered_at_s is not None else "dead" if d.dead else "pending"
    return {
        "id": d.id,
        "job_id": d.job_id,
        "type": kind,
        "url": d.url,
        "state": state,
        "attempts": d.attempts,
        "delivered_at": iso(d.delivered_at_s),
        "dead": d.dead,
        "last_error": d.last_error,
        "next_attempt_at": iso(d.next_attempt_at_s) if state == "pending" else None,
    }
