"""A NATS JetStream work queue. Contract: framequeue.brokers.base.Broker.

Client: nats-py driven through framequeue.brokers.aio.LoopThread. Per queue Q:

    stream   FQ_Q       subjects fq.Q.high, fq.Q.jobs (normal), fq.Q.low (one per lane), WorkQueue
                        retention, file storage: an acked message is deleted
    consumer workers    durable pull consumers, one per lane (workers-high, workers, workers-low, each
                        filtered on its lane's subject), shared by every instance (competing consumers),
                        explicit ack, AckWait = `ack_wait_s`, MaxDeliver = `max_deliveries`
    stream   FQDEAD_Q   subject fq.Q.dead, limits retention: the dead-letter store `take_dead` drains
                        (not FQ_Q_dead: queue "Q_dead" would own that name)

URL: nats://[user:pass@]host:4222?queue=Q&max_deliveries=N&ack_wait_s=120&connect_timeout_s=5. Opening
creates or updates the streams and the consumer to this configuration; instances of one queue must agree
(the last one opened wins).

Visibility. AckWait is a consumer setting, not a per-message one, so the caller's `visibility_s` is kept
by this instance: when it runs out the instance naks the message (redelivered at once, as the contract
asks), and while it is longer than AckWait the instance sends AckProgress (`+WPI`, which restarts
AckWait) every half AckWait. `extend` sends AckProgress and moves the deadline. The server's AckWait is
the backstop when the process is gone or frozen: its messages come back after `ack_wait_s`, not after
their visibility. Set `ack_wait_s` to the worker's lease_s (both default to 120 s), as RELIABILITY.md
says, and the two coincide.

Stale receipts. JetStream accepts an ack, nak or AckProgress from a holder whose AckWait ran out, even
after the message went to someone else (nats-server#4786): the stale ack deletes the new holder's
message (tests/contract/test_nats_specific.py shows it). So every ack, nak and AckProgress first checks,
on this side, that the delivery is still within its AckWait (counted from when it arrived or was last
refreshed, less a guard of min(1 s, AckWait/10) for the server's clock starting earlier); a stale one
is not sent, and ack / nack / extend on it do nothing. Receipts are random tokens known only to the
instance that received the message; other instances ignore them. The job store's fencing token, not
the broker, decides whose commit counts.

Dead letters. When JetStream would deliver a message a MaxDeliver+1th time (on the next pull, so only
while someone pulls) it gives up: it leaves the message in the stream, neither pending nor in flight,
and publishes an advisory. Every instance subscribes to it (one queue group, so one handles each) and
moves the job id to FQDEAD_Q (Nats-Msg-Id deduplicates repeats within 2 minutes) before deleting it
from FQ_Q. An advisory published while no instance is connected is lost: opening and `take_dead` sweep
for such messages, but only when the consumer has nothing in flight, because the server does not say
which unacked message is given up on and which is merely in flight. A busy queue whose advisories were
all missed keeps them until a quiet moment; until then their jobs stay queued (the job store's TTL ends
them).

Stats. ready = messages never delivered (the consumer's num_pending); messages waiting for a
redelivery are counted by the server with the unacked ones. delayed = nacks with a delay made through
this instance that are not yet due (the server cannot tell them from in-flight messages, so another
instance counts them in in_flight); in_flight = unacked messages less those. oldest_ready_age_s comes
from the first undelivered message's timestamp (server clock).

A server that comes back without its store (a new volume, a lost disk) has no stream and no consumer:
every instance creates them again when it reconnects, when a publish finds no stream, and when a pull
gets no answer at all (a live consumer always ends a pull with a status). The messages the server lost
are the job store's to recover: the reaper publishes again the queued jobs whose message is overdue.

Durability. A publish returns once the server stored the message, but the server fsyncs on its own
schedule (every 2 minutes by default; `jetstream { sync_interval: always }` on nats-server 2.10+), so a
host crash can lose an acknowledged publish. The stream's persist mode (server 2.12+) is left unset,
which is the synchronous default, never async. Run R3 clusters or sync_interval: always where a lost
publish matters.

Lanes. A receive asks the lanes' consumers in serving order for what they have now (a `no_wait` pull of
one message each; low before normal while low's oldest undelivered message has waited `low_max_wait_s` and
is older than normal's, looked up at most once a second); with nothing anywhere it waits for a publish to
any lane (each publisher sends an empty core message to fq.Q.wake once JetStream stored its messages; not
a subscription to the lanes' subjects, which would swallow publishes to a lost stream) or at most RESCAN_S (for
redeliveries and delayed naks, which publish nothing), then asks again.

Modules: `broker` (the protocol: pulls, visibility, receipts, stats), `streams` (the streams and the
consumer, their (re)declaration, and the dead letters).
"""

from framequeue.brokers.nats.broker import NatsBroker

__all__ = ["NatsBroker"]
