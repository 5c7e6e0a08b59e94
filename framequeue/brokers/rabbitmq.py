"""RabbitMQ over aio-pika: a quorum work queue with a delay queue and a dead-letter queue.
Contract: framequeue.brokers.base.Broker.

URL: `amqp://user:pass@host:5672/vhost?queue=NAME&max_deliveries=N&heartbeat=S` (heartbeat in seconds,
default 30). Topology, declared (idempotently) whenever a connection opens; all durable quorum queues:

- `NAME`: the work queue. `x-delivery-limit` is max_deliveries - 1, because RabbitMQ counts *returns*
  and dead-letters a message returned more often than the limit (limit L allows L + 1 deliveries).
  Dead-lettered at-least-once (which RabbitMQ only allows with `x-overflow: reject-publish`; there is no
  length limit, so nothing is ever rejected) to `NAME.dead`, so a poison message is kept, never dropped.
  `x-consumer-timeout` sits above the longest allowed job: RabbitMQ's default closes a channel that holds
  an unacked message for 30 min, and the job would run again while it still runs.
- `NAME.delay`: `nack(delay_s > 0)` publishes a copy here with a per-message TTL; on expiry it is
  dead-lettered (at-least-once) back to `NAME`. The copy carries the deliveries so far in a header,
  because the work queue's own count starts again for it.
- `NAME.dead`: messages given up on, drained by `take_dead`.

Redelivery follows the connection, not a visibility timeout (AMQP has none): an unacked message comes back
when its channel or connection closes, as when the process dies, or when the AMQP heartbeat lapses
because the process is paused. The job store's lease and the reaper decide who runs a job.

A restart of the server closes every connection; each call opens a new one. A waiting `receive` rides out
the restart: while RabbitMQ cannot be reached it tries again every RECONNECT_PAUSE_S, and fails only when
it has not come back within RECONNECT_S. Deliveries of the old connection went back to the queue with it.

Known limits:
- `x-consumer-timeout` needs RabbitMQ 3.11.15 or later; older servers accept the argument and ignore it,
  so only their global `consumer_timeout` (rabbitmq.conf) applies. A warning is logged at open; a job that
  outlives it is redelivered, and the duplicate is turned away by the job store's lease.
- `stats().in_flight` counts this broker instance's unacked messages only: AMQP reports a quorum queue's
  ready messages and consumers, not its unacked ones (the management API does, and is not assumed).
- `stats().oldest_ready_age_s` is None (unknown): reading the head message's timestamp means basic.get and a
  requeue, which counts as a delivery on a quorum queue and would push busy queues into dead-lettering.
- One delay queue, and RabbitMQ expires messages only at its head: a short delay queued behind a longer
  one waits for it. Delays are retry backoffs, so a retry may run late, never early, never lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlencode, urlsplit

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.abc import DeliveredMessage

from framequeue.brokers.aio import LoopThread
from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import FrameQueueError, InvalidParams, ServiceUnavailable
from framequeue.jobs import PRIORITIES, Priority

log = logging.getLogger(__name__)

T = TypeVar("T")

#: seconds between AMQP heartbeats unless the URL says `heartbeat=`; the server closes a connection that
#: missed about two, which is what hands a paused consumer's message to another one
DEFAULT_HEARTBEAT_S = 30
#: ack deadline per delivery on the work queue, in ms: twice the longest allowed job (max_runtime_s 3600)
CONSUMER_TIMEOUT_MS = 2 * 3600 * 1000
#: the oldest server that honours the x-consumer-timeout queue argument
CONSUMER_TIMEOUT_SINCE = (3, 11, 15)
#: header carrying the deliveries a message had before it went through the delay queue
CARRIED_HEADER = "x-fq-deliveries"
#: seconds for one client call (connect, publish and confirm, declare, ack) before it counts as unavailable
CALL_TIMEOUT_S = 15.0

#: pause before reopening a channel that dropped during receive()
RETRY_PAUSE_S = 0.05
#: how long receive() keeps trying to reach a RabbitMQ that went away (a restart takes seconds) before it
#: fails, and its pause between tries
RECONNECT_S = 30.0
RECONNECT_PAUSE_S = 0.5

#: client failures that mean "the broker is not reachable or dropped us", translated to ServiceUnavailable
_UNAVAILABLE = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, OSError, TimeoutError)
#: failures of an open channel or connection that dropped (server close, heartbeat lapse, network)
_DROPPED = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, ConnectionError)


@dataclass(frozen=True)
class _Topology:
    #: the queue name of the URL: the normal lane's work queue
    name: str
    #: x-delivery-limit of the work queues
    delivery_limit: int

    @property
    def work(self) -> str:
        return self.name

    @property
    def dead(self) -> str:
        return f"{self.name}.dead"

    def work_of(self, lane: Priority) -> str:
        """The lane's work queue: NAME for normal (the queue before lanes), NAME.high, NAME.low."""
        return self.name if lane is Priority.NORMAL else f"{self.name}.{lane.value}"

    def delay_of(self, lane: Priority) -> str:
        return f"{self.work_of(lane)}.delay"

    def lane_of(self, queue: str) -> Priority:
        return next((lane for lane in PRIORITIES if self.work_of(lane) == queue), Priority.NORMAL)

    def arguments(self) -> dict[str, dict[str, Any]]:
        at_least_once = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
        out: dict[str, dict[str, Any]] = {}
        for lane in PRIORITIES:
            # the low lane's messages expire (per-message TTL, low_max_wait_s) into the normal queue; so does a
            # low message past the delivery limit, which the receiver recognises by its x-death and dead-letters
            target = self.work_of(Priority.NORMAL) if lane is Priority.LOW else self.dead
            out[self.work_of(lane)] = {
                "x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit,
                "x-consumer-timeout": CONSUMER_TIMEOUT_MS, "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": target, **at_least_once,
            }
            out[self.delay_of(lane)] = {
                "x-queue-type": "quorum", "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.work_of(lane), **at_least_once,
            }
        out[self.dead] = {"x-queue-type": "quorum"}
        return out


class RabbitMQBroker:
    #: an unacked message comes back when its consumer's channel or connection closes
    redelivery: ClassVar[Literal["visibility", "connection"]] = "connection"

    def __init__(self, url: str) -> None:
        opts = parse_broker_url(url)
        extra = dict(opts.extra)
        try:
            heartbeat_s = int(extra.pop("heartbeat", DEFAULT_HEARTBEAT_S))
        except ValueError:
            raise InvalidParams("heartbeat must be a whole number of seconds") from None
        if heartbeat_s < 1:
            raise InvalidParams("heartbeat must be at least 1 s: it is how a paused consumer loses its message")
        base = opts.server_url.split("?", 1)[0]
        self._url = f"{base}?{urlencode({**extra, 'heartbeat': heartbeat_s, 'name': f'framequeue:{opts.queue}'})}"
        self._password = urlsplit(base).password
        self._max_deliveries = opts.max_deliveries
        self._topology = _Topology(name=opts.queue, delivery_limit=opts.max_deliveries - 1)
        self._low_max_wait_s = opts.low_max_wait_s
        #: the lanes receive takes from (URL option `lanes`), in serving order
        self._receive_lanes: tuple[Priority, ...] = opts.lanes
        self._conn: AbstractConnection | None = None
        #: confirm-mode channel for publishes, declares and the dead queue
        self._pub: AbstractChannel | None = None
        #: manual-ack channel with prefetch 1 for the work queue; replaced (with its deliveries) when it closes
        self._con: AbstractChannel | None = None
        #: bumped with each new consuming channel, so receipts from an older one are recognised as stale
        self._generation = 0
        #: receipt -> delivery tag and lane of each message received on the current consuming channel and not
        #: settled
        self._held: dict[str, tuple[int, Priority]] = {}
        #: deliveries that arrived after their receive() had one, with their lane; handed out by the next
        #: receive(), highest lane first
        self._stash: list[tuple[Priority, DeliveredMessage]] = []
        #: whether the queues were declared on the current connection; cleared when one went missing
        self._declared = False
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._loop = LoopThread(f"rabbitmq-{opts.queue}")
        try:
            self._call(self._ensure())
        except BaseException:
            self.close()
            raise

    # -- the Broker protocol ---------------------------------------------------------------------------

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        """Returns once the broker confirmed the message (persistent, on a quorum queue)."""
        self._call(self._publish_all([job_id], [Priority(priority)]))

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """Every message on the one publishing channel, then one wait for all their confirms."""
        lanes = lanes_of(job_ids, priorities)
        if job_ids:
            self._call(self._publish_all(job_ids, lanes))

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        """visibility_s does not apply: the message stays with this consumer until acked, nacked, or its
        connection closes."""
        if self._closed:
            return None
        return self._call(self._receive(wait_s), timeout_s=wait_s + RECONNECT_S + CALL_TIMEOUT_S)

    def ack(self, message: Message) -> None:
        """A no-op for a message whose channel has closed since: RabbitMQ already handed it back."""
        self._call(self._settle(message, requeue=False))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        self._call(self._nack(message, delay_s))

    def extend(self, message: Message, visibility_s: float) -> None:
        """A no-op: nothing expires a held message but its connection, which the heartbeat keeps open,
        and the job store's lease, renewed by the worker, is what fences a job."""

    def stats(self) -> QueueStats:
        return self._call(self._stats())

    def take_dead(self, limit: int) -> list[str]:
        return self._call(self._take_dead(limit))

    def close(self) -> None:
        """Closes the channels and the connection (unacked messages go back to the queue) and the loop."""
        if self._closed:
            return
        self._closed = True
        try:
            self._loop.run(self._aclose(), timeout_s=CALL_TIMEOUT_S)
        except Exception as exc:  # closing a dead connection: the server has handed everything back already
            log.debug("RabbitMQ close: %s", self._redact(str(exc)))
        finally:
            self._loop.close()

    # -- on the loop -----------------------------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, T], timeout_s: float = CALL_TIMEOUT_S) -> T:
        if self._closed:
            coro.close()
            raise ServiceUnavailable("the RabbitMQ broker is closed")
        try:
            return self._loop.run(coro, timeout_s=timeout_s)
        except FrameQueueError:
            raise
        except _UNAVAILABLE as exc:
            raise ServiceUnavailable(f"RabbitMQ: {self._redact(str(exc) or type(exc).__name__)}") from exc

    def _redact(self, text: str) -> str:
        return text.replace(self._password, "***") if self._password else text

    async def _ensure(self) -> tuple[AbstractChannel, AbstractChannel]:
        """The publishing and consuming channels, (re)opening the connection, the topology and the channels
        as needed; a consuming channel that closed took its deliveries with it, so their receipts go."""
        async with self._open_lock:
            if self._conn is None or not _alive(self._conn):
                if self._conn is not None:
                    await _quietly_close(self._conn)
                self._conn = await aio_pika.connect(self._url, timeout=CALL_TIMEOUT_S)
                self._pub = self._con = None
                self._declared = False
                self._warn_if_consumer_timeout_ignored(self._conn)
            if self._pub is None or self._pub.is_closed:
                # on_return_raises: an unroutable publish (queue deleted) must fail, not vanish
                self._pub = await self._conn.channel(publisher_confirms=True, on_return_raises=True)
            if not self._declared:
                await self._declare(self._pub)
                self._declared = True
            if self._con is None or self._con.is_closed:
                self._con = await self._conn.channel(publisher_confirms=False)
                # per consumer (global=False): each receive() gets one message, however many this instance holds
                await self._con.set_qos(prefetch_count=1)
                self._generation += 1
                self._held.clear()
                self._stash.clear()
            return self._pub, self._con

    async def _declare(self, channel: AbstractChannel) -> None:
        for name, arguments in self._topology.arguments().items():
            try:
                await channel.declare_queue(name, durable=True, arguments=arguments, timeout=CALL_TIMEOUT_S)
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                raise InvalidParams(
                    f"RabbitMQ queue {name!r} exists with other arguments (another max_deliveries?): "
                    f"delete it or open it with its own settings ({exc})"
                ) from exc

    def _warn_if_consumer_timeout_ignored(self, conn: AbstractConnection) -> None:
        version = str(conn.transport.connection.server_properties.get("version", "")) if conn.transport else ""
        try:
            parsed = tuple(int(part) for part in version.split(".")[:3])
        except ValueError:
            return
        if parsed < CONSUMER_TIMEOUT_SINCE:
            log.warning(
                "RabbitMQ %s ignores the per-queue consumer timeout (needs 3.11.15+): its global consumer_timeout "
                "applies (30 min by default); set consumer_timeout = %d in rabbitmq.conf so that long jobs are "
                "not redelivered while they run", version, CONSUMER_TIMEOUT_MS,
            )

    async def _publish(self, queue: str, job_id: str, headers: dict[str, Any] | None = None,
                       expiration_s: float | None = None) -> None:
        pub, _ = await self._ensure()
        message = aio_pika.Message(
            job_id.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT, content_type="text/plain",
            timestamp=datetime.now(UTC), headers=headers or {}, expiration=expiration_s,
        )
        # with publisher confirms this returns once RabbitMQ has the message (raises on nack or return)
        try:
            await pub.default_exchange.publish(message, routing_key=queue, timeout=CALL_TIMEOUT_S)
        except aiormq.exceptions.DeliveryError:
            self._declared = False  # returned as unroutable: the queue was deleted; declare it again next time
            raise

    async def _publish_all(self, job_ids: Sequence[str], lanes: Sequence[Priority]) -> None:
        # each publish awaits its own confirm; gathered, they are all sent before the first confirm is awaited
        await self._ensure()  # once, before the publishes share the channel
        done = await asyncio.gather(
            *(self._publish(self._topology.work_of(lane), j,
                            expiration_s=self._low_max_wait_s if lane is Priority.LOW else None)
              for j, lane in zip(job_ids, lanes, strict=True)),
            return_exceptions=True,
        )
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _receive(self, wait_s: float) -> Message | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        unreachable_since: float | None = None
        while True:
            try:
                _, con = await self._ensure()
            except _UNAVAILABLE as exc:
                # RabbitMQ cannot be reached: restarting, or gone; wait for it a while before failing the caller
                now = loop.time()
                if unreachable_since is None:
                    unreachable_since = now
                    log.warning("RabbitMQ cannot be reached (%s); trying again for up to %.0f s",
                                self._redact(str(exc) or type(exc).__name__), RECONNECT_S)
                if self._closed:
                    return None
                if now - unreachable_since >= RECONNECT_S:
                    raise
                await asyncio.sleep(RECONNECT_PAUSE_S)
                continue
            if unreachable_since is not None:
                log.info("RabbitMQ is back after %.1f s", loop.time() - unreachable_since)
                unreachable_since = None
            try:
                delivered = await self._next(con, deadline - loop.time())
            except _DROPPED as exc:
                if isinstance(exc, aiormq.exceptions.ChannelNotFoundEntity):
                    self._declared = False  # the work queue was deleted under us
                if loop.time() >= deadline:
                    raise
                log.info("RabbitMQ channel dropped while receiving (%s); reopening", self._redact(str(exc)))
                await asyncio.sleep(RETRY_PAUSE_S)
                continue
            if delivered is None:
                if con.is_closed and loop.time() < deadline:
                    continue  # the channel or connection dropped while we waited: reopen and wait on
                return None
            message = self._to_message(*delivered)
            if message.deliveries <= self._max_deliveries:
                return message
            # only a message back from the delay queue (the work queue's own limit restarted for it), or a low
            # one the low queue gave up on, gets here
            await self._dead_letter(message)

    async def _next(self, channel: AbstractChannel, wait_s: float) -> tuple[Priority, DeliveredMessage] | None:
        """The waiting message of the highest lane (a stashed one first within its lane), by basic.get lane by
        lane; with none waiting, the first to arrive within wait_s on any lane."""
        raw = await channel.get_underlay_channel()
        for lane in self._receive_lanes:
            stashed = next((i for i, (held_lane, _) in enumerate(self._stash) if held_lane is lane), None)
            if stashed is not None:
                return self._stash.pop(stashed)
            got = await raw.basic_get(self._topology.work_of(lane), no_ack=False, timeout=CALL_TIMEOUT_S)
            if got.delivery_tag is not None:  # else GetEmpty
                return lane, got
        if wait_s <= 0:
            return None
        return await self._consume_one(raw, wait_s)

    async def _consume_one(self, raw: aiormq.abc.AbstractChannel,
                           wait_s: float) -> tuple[Priority, DeliveredMessage] | None:
        """Consume on every lane until one message arrives or wait_s passes, then cancel, so that no further
        message is held for a caller who is not asking (a standing prefetch would hide a message from other
        workers). Of what arrived before the cancel, the highest lane's is answered and the rest stashed."""
        arrived: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_message_of(lane: Priority) -> Callable[[DeliveredMessage], Coroutine[Any, Any, None]]:
            async def on_message(delivered: DeliveredMessage) -> None:
                # one that arrives between giving up and the cancel-ok is unacked and ours: kept for later
                self._stash.append((lane, delivered))
                if not arrived.done():
                    arrived.set_result(None)
            return on_message

        tags: list[str] = []
        closing = raw.closing  # an observer: cancelling it below only stops observing
        try:
            for lane in self._receive_lanes:
                ok = await raw.basic_consume(self._topology.work_of(lane), on_message_of(lane),
                                             timeout=CALL_TIMEOUT_S)
                if ok.consumer_tag is not None:
                    tags.append(ok.consumer_tag)
            await asyncio.wait([arrived, closing], timeout=max(0.0, wait_s), return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not arrived.done():
                arrived.cancel()
            for tag in tags:
                if not raw.is_closed:
                    # deliveries before the cancel-ok were dispatched (as tasks) before this returns
                    await raw.basic_cancel(tag, timeout=CALL_TIMEOUT_S)
            await asyncio.sleep(0)
        if not self._stash:
            return None
        best = min(range(len(self._stash)), key=lambda i: self._stash[i][0].rank)
        return self._stash.pop(best)

    def _to_message(self, lane: Priority, delivered: DeliveredMessage) -> Message:
        headers = delivered.header.properties.headers or {}
        # the quorum queue's count of earlier returns (absent or 0 on a first delivery), plus what the
        # message had before a delay
        returns = _int(headers.get("x-delivery-count"))
        carried = _int(headers.get(CARRIED_HEADER))
        tag = delivered.delivery_tag
        if tag is None:
            raise ServiceUnavailable("RabbitMQ delivered a message without a delivery tag")
        receipt = f"{self._generation}:{tag}"
        self._held[receipt] = (tag, lane)
        deliveries = carried + returns + 1
        if _gave_up(headers.get("x-death")):  # the low queue dead-lettered it here at its delivery limit
            deliveries = max(deliveries, self._max_deliveries + 1)
        return Message(receipt=receipt, job_id=delivered.body.decode(), deliveries=deliveries)

    async def _settle(self, message: Message, requeue: bool) -> None:
        held = self._held.pop(message.receipt, None)
        if held is None or self._con is None or self._con.is_closed:
            return  # settled already, or its channel closed and RabbitMQ handed it back
        tag = held[0]
        raw = await self._con.get_underlay_channel()
        try:
            if requeue:
                await raw.basic_nack(tag, requeue=True)
            else:
                await raw.basic_ack(tag)
        except _DROPPED as exc:
            # the same outcome as a stale receipt: RabbitMQ hands back whatever a dead channel held
            log.debug("RabbitMQ: %s not settled, its channel dropped (%s)", message.job_id, self._redact(str(exc)))

    async def _nack(self, message: Message, delay_s: float) -> None:
        if message.receipt not in self._held:
            return
        lane = self._held[message.receipt][1]
        if message.deliveries >= self._max_deliveries:
            await self._dead_letter(message)
        elif delay_s <= 0:
            await self._settle(message, requeue=True)  # the quorum queue counts this return
        else:
            # copy first, then ack: a crash between the two duplicates the job id, never loses it
            try:
                await self._publish(self._topology.delay_of(lane), message.job_id,
                                    headers={CARRIED_HEADER: message.deliveries}, expiration_s=delay_s)
            except BaseException:
                # not delayed: hand it back now rather than hold it unacked until this connection ends
                await self._settle(message, requeue=True)
                raise
            await self._settle(message, requeue=False)

    async def _dead_letter(self, message: Message) -> None:
        headers = {CARRIED_HEADER: message.deliveries, "x-fq-dead-reason": "delivery_limit"}
        await self._publish(self._topology.dead, message.job_id, headers=headers)
        await self._settle(message, requeue=False)

    async def _stats(self) -> QueueStats:
        pub, _ = await self._ensure()
        counts: dict[str, int] = {}
        for name in self._topology.arguments():
            queue = await pub.declare_queue(name, passive=True, timeout=CALL_TIMEOUT_S)
            # a quorum queue's message_count is its ready messages, unacked ones excluded
            counts[name] = queue.declaration_result.message_count or 0
        topology = self._topology
        return QueueStats(
            ready=sum(counts[topology.work_of(lane)] for lane in PRIORITIES),
            in_flight=len(self._held) + len(self._stash),
            delayed=sum(counts[topology.delay_of(lane)] for lane in PRIORITIES), dead=counts[topology.dead],
            oldest_ready_age_s=None,
            waiting_by_priority={
                lane: counts[topology.work_of(lane)] + counts[topology.delay_of(lane)] for lane in PRIORITIES
            },
        )

    async def _take_dead(self, limit: int) -> list[str]:
        pub, _ = await self._ensure()
        queue = await pub.declare_queue(self._topology.dead, passive=True, timeout=CALL_TIMEOUT_S)
        taken: list[aio_pika.abc.AbstractIncomingMessage] = []
        while len(taken) < limit:
            got = await queue.get(no_ack=False, fail=False, timeout=CALL_TIMEOUT_S)
            if got is None:
                break
            taken.append(got)
        if taken:
            # one ack for the batch, after all were read: a failure leaves them all in the dead queue
            await taken[-1].ack(multiple=True)
        return [m.body.decode() for m in taken]

    async def _aclose(self) -> None:
        try:
            if self._conn is not None:
                await _quietly_close(self._conn)
        finally:
            # the loop is private: end the client's leftover tasks (reader, writer, heartbeat of a dropped
            # connection) so that none is destroyed pending when the loop closes
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in others:
                task.cancel()
            await asyncio.gather(*others, return_exceptions=True)


def _alive(conn: AbstractConnection) -> bool:
    # aio-pika's own is_closed stays False when the server (or a lapsed heartbeat) ended the connection
    return not conn.is_closed and conn.transport is not None and not conn.transport.connection.is_closed


async def _quietly_close(conn: AbstractConnection) -> None:
    try:
        await conn.close()
    except Exception as exc:  # it is already dead; closing only releases the client's side
        log.debug("RabbitMQ: closing a dropped connection: %s", exc)


def _gave_up(deaths: object) -> bool:
    """Whether an x-death header says a queue dead-lettered the message at its delivery limit."""
    if not isinstance(deaths, list):
        return False
    for death in deaths:
        reason = death.get("reason") if isinstance(death, dict) else None
        if reason in ("delivery_limit", b"delivery_limit"):
            return True
    return False


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0
