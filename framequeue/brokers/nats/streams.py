"""One queue's JetStream layout: its work stream and consumer, its dead-letter stream, how they are
created or brought to the configuration, and how given-up messages move to the dead-letter stream.
The design: framequeue.brokers.nats."""

from __future__ import annotations

import json
import logging
from contextlib import suppress
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from framequeue.errors import InvalidParams
from framequeue.jobs import PRIORITIES, Priority

log = logging.getLogger("framequeue.brokers.nats")

CONSUMER = "workers"
#: repeated dead-letter publishes of one message within this window are stored once
DEAD_DEDUPE_WINDOW_S = 120.0
#: JetStream error codes
_STREAM_NAME_IN_USE = 10058
_SEQUENCE_NOT_FOUND = 10043


@dataclass(frozen=True)
class Layout:
    """The names and limits of queue Q's streams and consumer."""

    queue: str
    #: the consumer's AckWait: an unacked delivery goes back to the stream after this long
    ack_wait_s: float
    #: the consumer's MaxDeliver: a message delivered this often is dead-lettered
    max_deliveries: int

    @property
    def stream(self) -> str:
        return f"FQ_{self.queue}"

    @property
    def subject(self) -> str:
        """The normal lane's subject (the queue's one subject before lanes)."""
        return f"fq.{self.queue}.jobs"

    def subject_of(self, lane: Priority) -> str:
        """The lane's subject: fq.Q.jobs for normal, fq.Q.high, fq.Q.low."""
        return self.subject if lane is Priority.NORMAL else f"fq.{self.queue}.{lane.value}"

    def consumer_of(self, lane: Priority) -> str:
        """The lane's durable consumer: `workers` for normal, `workers-high`, `workers-low`."""
        return CONSUMER if lane is Priority.NORMAL else f"{CONSUMER}-{lane.value}"

    def lane_of(self, subject: str) -> Priority:
        return next((lane for lane in PRIORITIES if self.subject_of(lane) == subject), Priority.NORMAL)

    @property
    def wake_subject(self) -> str:
        """A core subject (no stream stores it) a publisher sends to once its messages are stored, so that
        waiting receives look again at once."""
        return f"fq.{self.queue}.wake"

    def next_subject_of(self, lane: Priority) -> str:
        """Where a pull asks the lane's consumer for its next message."""
        return f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{self.consumer_of(lane)}"

    @property
    def dead_stream(self) -> str:
        # not FQ_Q_dead: queue "Q_dead" would own that name
        return f"FQDEAD_{self.queue}"

    @property
    def dead_subject(self) -> str:
        return f"fq.{self.queue}.dead"

    @property
    def dead_group(self) -> str:
        """The queue group of the instances' advisory subscriptions: one of them handles each."""
        return f"fq.{self.queue}.dead"

    @property
    def exhausted_subject(self) -> str:
        """The advisory the server publishes when a lane's consumer gives up on a message (MaxDeliver)."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.*"


async def declare(js: JetStreamContext, layout: Layout) -> None:
    """Create the streams and the consumer, or bring them to this configuration."""
    await _ensure_stream(js, api.StreamConfig(
        name=layout.stream, subjects=[layout.subject_of(lane) for lane in PRIORITIES],
        retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
    ))
    await _ensure_stream(js, api.StreamConfig(
        name=layout.dead_stream, subjects=[layout.dead_subject], retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE, duplicate_window=DEAD_DEDUPE_WINDOW_S,
    ))
    # one consumer per lane, on its own subject (a work-queue stream allows consumers that do not overlap);
    # creating a durable consumer with another config updates it (ack_wait, max_deliver are editable)
    for lane in PRIORITIES:
        await js.add_consumer(layout.stream, api.ConsumerConfig(
            durable_name=layout.consumer_of(lane), filter_subject=layout.subject_of(lane),
            ack_policy=api.AckPolicy.EXPLICIT, ack_wait=layout.ack_wait_s, max_deliver=layout.max_deliveries,
            deliver_policy=api.DeliverPolicy.ALL,
            # delayed nacks hold an ack slot too: no cap, the workers' prefetch of 1 is the real limit
            max_ack_pending=-1,
        ))


async def declared(js: JetStreamContext, layout: Layout) -> bool:
    """Whether the consumer and the dead-letter stream are there (a server restarted without its store
    has neither)."""
    try:
        for lane in PRIORITIES:
            await js.consumer_info(layout.stream, layout.consumer_of(lane))
        await js.stream_info(layout.dead_stream)
    except nats.js.errors.NotFoundError:
        return False
    return True


# -- dead letters ------------------------------------------------------------------------------------------


async def on_exhausted(js: JetStreamContext, layout: Layout, advisory: Msg) -> None:
    """The server gave up on a message: move it to the dead-letter stream."""
    try:
        seq = int(json.loads(advisory.data)["stream_seq"])
        try:
            entry = await js.get_msg(layout.stream, seq)
        except nats.js.errors.NotFoundError:
            return  # another instance (or a sweep) moved it already
        await _bury(js, layout, seq, (entry.data or b"").decode(errors="replace"))
    except Exception as exc:  # a subscription callback must not die; the sweep tries again
        log.warning("NATS queue %s: dead-lettering failed: %s", layout.stream, exc or type(exc).__name__)


async def sweep(js: JetStreamContext, layout: Layout) -> None:
    """Dead-letter messages whose advisory nobody saw. Exact only when nothing is in flight: then every
    delivered message still in the stream was given up on. A failure is logged: the next sweep retries."""
    try:
        await _sweep(js, layout)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        log.warning("NATS queue %s: dead-letter sweep failed: %s", layout.stream, exc)


async def take_dead(js: JetStreamContext, layout: Layout, limit: int) -> list[str]:
    """Up to `limit` dead-lettered job ids, each removed from the dead-letter stream by whoever takes it."""
    await sweep(js, layout)
    state = (await js.stream_info(layout.dead_stream)).state
    taken: list[str] = []
    seq = state.first_seq
    while len(taken) < limit and seq <= state.last_seq:
        try:
            entry = await js.get_msg(layout.dead_stream, seq, subject=layout.dead_subject, next=True)
        except nats.js.errors.NotFoundError:
            break
        assert entry.seq is not None
        seq = entry.seq + 1
        # whoever deletes the entry owns it: two reapers never both return one job id
        if await _delete(js, layout.dead_stream, entry.seq):
            taken.append((entry.data or b"").decode(errors="replace"))
    return taken


async def _bury(js: JetStreamContext, layout: Layout, seq: int, job_id: str) -> None:
    # the dead store first: a crash in between leaves the message to the next sweep, not lost
    await js.publish(
        layout.dead_subject, job_id.encode(), stream=layout.dead_stream, headers={"Nats-Msg-Id": f"{job_id}:{seq}"}
    )
    await _delete(js, layout.stream, seq)
    log.info("NATS queue %s: job %s dead-lettered after %d deliveries", layout.stream, job_id,
             layout.max_deliveries)


async def _sweep(js: JetStreamContext, layout: Layout) -> None:
    infos = {lane: await js.consumer_info(layout.stream, layout.consumer_of(lane)) for lane in PRIORITIES}
    if any(info.num_ack_pending for info in infos.values()):
        return
    state = (await js.stream_info(layout.stream)).state
    if state.messages <= sum(info.num_pending or 0 for info in infos.values()):
        return
    found: list[int] = []
    for lane, info in infos.items():
        if info.delivered is None:
            continue
        last = info.delivered.stream_seq
        seq = state.first_seq
        while seq <= last:
            try:
                entry = await js.get_msg(layout.stream, seq, subject=layout.subject_of(lane), next=True)
            except nats.js.errors.NotFoundError:
                break
            assert entry.seq is not None
            if entry.seq > last:
                break
            found.append(entry.seq)
            seq = entry.seq + 1
    if not found:
        return
    # the server drops an acked message just after it stops counting it as pending: look again
    for lane in PRIORITIES:
        if (await js.consumer_info(layout.stream, layout.consumer_of(lane))).num_ack_pending:
            return
    for seq in found:
        with suppress(nats.js.errors.NotFoundError):
            entry = await js.get_msg(layout.stream, seq)
            await _bury(js, layout, seq, (entry.data or b"").decode(errors="replace"))


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    """Create the stream, or bring an existing one to this configuration (creating is idempotent only for
    an identical one)."""
    try:
        await js.add_stream(config)
    except nats.js.errors.BadRequestError as exc:
        if exc.err_code != _STREAM_NAME_IN_USE:
            raise
        await js.update_stream(config)


async def _delete(js: JetStreamContext, stream: str, seq: int) -> bool:
    """Delete one message; False when it was gone already."""
    try:
        return await js.delete_msg(stream, seq)
    except nats.js.errors.APIError as exc:
        if exc.err_code == _SEQUENCE_NOT_FOUND or isinstance(exc, nats.js.errors.NotFoundError):
            return False
        raise


def seconds_option(options: dict[str, str], name: str, default: float) -> float:
    """Pop a URL option that is a positive number of seconds."""
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidParams(f"{name} must be a number of seconds") from None
    if not value > 0:
        raise InvalidParams(f"{name} must be above 0")
    return value


__all__ = ["CONSUMER", "Layout", "declare", "declared", "on_exhausted", "seconds_option", "sweep", "take_dead"]
