"""KEDA's role on a cluster without KEDA: read the worker ScaledObject from the API server, read the queue's
load (framequeue's own QueueObserver: broker statistics + the job store's running jobs), decide with
framequeue's own policy (`scaling.policy.decide`), and write the target Deployment's `scale` subresource.

The policy's knobs come from the ScaledObject the chart rendered, so this exercises the chart's numbers:
target and activation from `advanced.scalingModifiers`, min/max replica counts, `cooldownPeriod` as the idle
time before zero, the HPA behaviour's scale-down stabilisation and scale-up period as the two cooldowns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from framequeue.scaling.autoscale.observe import QueueObserver
from framequeue.scaling.policy import Decision, Observation, PolicyConfig, PolicyState, decide

log = logging.getLogger("tests.cluster.keda")

Api = Callable[..., Any]


def policy_config(scaled_object: dict[str, Any]) -> PolicyConfig:
    """The PolicyConfig a ScaledObject of the chart stands for."""
    spec = scaled_object["spec"]
    advanced = spec.get("advanced", {})
    modifiers = advanced.get("scalingModifiers", {})
    behavior = advanced.get("horizontalPodAutoscalerConfig", {}).get("behavior", {})
    scale_up = behavior.get("scaleUp", {}).get("policies", [{}])
    return PolicyConfig(
        target_jobs_per_worker=float(modifiers.get("target", 1)),
        activation_jobs=int(float(modifiers.get("activationTarget", 0))),
        min_workers=int(spec.get("minReplicaCount", 0)),
        max_workers=int(spec.get("maxReplicaCount", 100)),
        idle_to_zero_s=float(spec.get("cooldownPeriod", 300)),
        scale_in_cooldown_s=float(behavior.get("scaleDown", {}).get("stabilizationWindowSeconds", 300)),
        scale_out_cooldown_s=float(min((p.get("periodSeconds", 15) for p in scale_up), default=15)),
    )


@dataclass
class KedaStandIn:
    api: Api
    namespace: str
    scaled_object: str
    observe: QueueObserver
    clock: Callable[[], float] = time.time
    state: PolicyState = field(default_factory=PolicyState)
    #: (time, observation, decision) of every tick, for the assertion messages
    history: list[tuple[float, Observation, Decision]] = field(default_factory=list)

    def _scale_path(self) -> tuple[str, PolicyConfig]:
        so = self.api("GET", f"/apis/keda.sh/v1alpha1/namespaces/{self.namespace}/scaledobjects/{self.scaled_object}")
        target = so["spec"]["scaleTargetRef"]["name"]
        return f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{target}/scale", policy_config(so)

    def tick(self) -> Decision:
        path, config = self._scale_path()
        current = int(self.api("GET", path)["spec"].get("replicas", 0))
        load = self.observe()
        obs = Observation(self.clock(), load.waiting, load.in_flight, current)
        decision, self.state = decide(config, obs, self.state)
        self.history.append((obs.now_s, obs, decision))
        if decision.workers != current:
            log.info("scale %d -> %d (%s)", current, decision.workers, decision.reason)
            self.api("PATCH", path, {"spec": {"replicas": decision.workers}},
                     content_type="application/merge-patch+json")  # fmt: skip
        return decision

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # as KEDA: a failed look at the queue is retried at the next interval
                log.exception("keda stand-in tick failed")
            stop.wait(interval_s)

    def describe(self, last: int = 15) -> str:
        return "\n".join(
            f"{t:.0f} waiting={o.waiting} in_flight={o.in_flight} current={o.current_workers} -> "
            f"{d.workers} ({d.reason})"
            for t, o, d in self.history[-last:]
        )
