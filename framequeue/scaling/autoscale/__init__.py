"""The local supervisor of `framequeue autoscale`: runs the policy against the real queue statistics and starts
or stops `framequeue worker` processes on this machine.

Every `interval_s` one tick (loop.Autoscaler):

1. **reap**: worker processes that exited are forgotten; one that exited without being asked to (crashed) is
   logged, and the next reconcile starts another in its place (local);
2. **escalate**: a worker still alive `kill_after_s` after its SIGTERM (the worker's drain_s + a grace) is
   SIGKILLed, process group and all, and logged as an error: a worker is never killed otherwise (local);
3. **observe**: waiting = ready + delayed messages of the broker; in-flight = the larger of the broker's
   unacked messages and the job store's running jobs (RabbitMQ's in_flight counts only the unacked
   messages of one connection, so the job store is the better count of busy workers); the running jobs'
   lease owners (`host:pid`) also say which of this host's workers are busy (observe);
4. **decide**: the pure `scaling.policy.decide(config, observation, state)` with `current_workers` = the
   worker count the supervisor holds (as a Kubernetes Deployment's replicas: a crashed worker is replaced
   without a policy decision, cooldown or not), the clock injected (time.time in production);
5. **apply**: start workers (each its own process group, so a terminal's Ctrl-C or a signal to the
   supervisor's group never reaches them), or scale in by SIGTERM to the most recently started idle workers,
   then the most recently started busy ones; a worker drains (finishes its job, or hands it back after its
   drain_s) and exits by itself. A worker that got SIGTERM is *leaving*: it is not capacity and is never
   counted as current (local);
6. **record**: one log line and one JSON line (`decisions` file) per decision (decisions).

`Autoscaler.shutdown()` (SIGTERM / SIGINT of the command) stops deciding, sends SIGTERM to every worker and
waits for them to drain. The command's own options (hour floors, their time zone) are read in floors.
"""
