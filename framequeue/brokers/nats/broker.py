"""The NATS JetStream broker (framequeue.brokers.nats describes it): pulls, visibility kept on this side,
stale receipts refused, stats. The streams, the consumer and the dead letters: .streams."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import json
import logging
import secrets
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from framequeue.brokers.aio import LoopThread
from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.nats.streams import (
    Layout,
    declare,
    declared,
    on_exhausted,
    seconds_option,
    sweep,
    take_dead,
)
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import InvalidParams, ServiceUnavailable
from framequeue.jobs import PRIORITIES, Priority

T = TypeVar("T")
log = logging.getLogger("framequeue.brokers.nats")

#: AckWait when the URL names none: the worker's default lease_s
DEFAULT_ACK_WAIT_S = 120.0
#: how long opening waits for a server when the URL names no connect_timeout_s
DEFAULT_CONNECT_TIMEOUT_S = 5.0
#: a call that has not finished after this long (plus its wait) means NATS is unavailable
OP_TIMEOUT_S = 10.0
#: a JetStream API request, publish or ack request without an answer after this long has failed
REQUEST_TIMEOUT_S = 5.0
#: how long after its expiry a pull's end (a message, or the server's 408) may still come
PULL_GRACE_S = 1.0
#: a pull's receive waits at most this long for a publish before it asks every lane again (redeliveries
#: and delayed naks come due without a publish)
RESCAN_S = 0.5
#: how often the lanes' order (anti-starvation) is worked out again, in seconds
LANE_CHECK_S = 1.0
#: a lock wait shorter than this gives up at once
MIN_PULL_S = 0.01
#: a pull left without any answer looks for a lost stream or consumer at most this often
RESTORE_CHECK_S = 5.0


@dataclass
class _Held:
    """A delivery handed to the caller and not yet settled. Times are the loop's (monotonic) clock."""

    msg: Msg
    #: when the caller's visibility runs out and this instance naks the message
    visible_until: float
    #: when the server's AckWait runs out, as seen from here
    server_until: float
    timer: asyncio.TimerHandle | None = None


class NatsBroker:
    #: an unacked message comes back when its visibility (this instance) or its AckWait (the server) ends
    redelivery: ClassVar[Literal["visibility", "connection"]] = "visibility"

    def __init__(self, url: str) -> None:
        opts = parse_broker_url(url)
        extra = dict(opts.extra)
        self._ack_wait_s = seconds_option(extra, "ack_wait_s", DEFAULT_ACK_WAIT_S)
        connect_timeout_s = seconds_option(extra, "connect_timeout_s", DEFAULT_CONNECT_TIMEOUT_S)
        if extra:
            raise InvalidParams(f"unknown NATS broker option(s): {', '.join(sorted(extra))}")
        self._server = opts.server_url.split("?", 1)[0]
        parts = urlsplit(self._server)
        #: for error messages: never the password
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 4222}"
        self._layout = Layout(opts.queue, self._ack_wait_s, opts.max_deliveries)
        self._stream, self._subject = self._layout.stream, self._layout.subject
        #: the server's AckWait clock started before the message reached us, and an ack takes time to land
        self._guard_s = min(1.0, self._ack_wait_s / 10)
        self._held: dict[str, _Held] = {}
        #: receipt of a nack with a delay -> when it is due (loop clock)
        self._delayed: dict[str, float] = {}
        #: (arrival time, message) for every answer to this instance's pulls, statuses included
        self._inbox: asyncio.Queue[tuple[float, Msg]] = asyncio.Queue()
        self._pull_lock = asyncio.Lock()
        #: pulls sent whose end has not come yet, and when the last of them expires
        self._pulls_open = 0
        self._pulls_end = 0.0
        #: receives in progress (cancelled by close) and fire-and-forget naks / refreshes (awaited by close)
        self._receiving: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._low_max_wait_s = opts.low_max_wait_s
        #: the lanes receive pulls from (URL option `lanes`), in serving order
        self._receive_lanes: tuple[Priority, ...] = opts.lanes
        #: set when a publisher says (on the wake subject) that it stored messages in some lane
        self._published = asyncio.Event()
        #: when the lanes' order was last worked out (loop clock), and that order
        self._order_checked = -1e9
        self._order: tuple[Priority, ...] = self._receive_lanes
        self._reply_to = ""
        #: serialises restoring the streams and the consumer; when a pull last triggered a check (loop clock)
        self._restore_lock = asyncio.Lock()
        self._restore_checked = 0.0
        self._closed = False
        self._nc = Client()
        self._aio = LoopThread(f"nats-{opts.queue}")
        try:
            self._js: JetStreamContext = self._run(self._open(connect_timeout_s), connect_timeout_s + OP_TIMEOUT_S)
        except BaseException:
            self.close()
            raise

    # -- opening --------------------------------------------------------------------------------------

    async def _open(self, connect_timeout_s: float) -> JetStreamContext:
        try:
            await asyncio.wait_for(
                self._nc.connect(
                    self._server,
                    name=f"framequeue {self._stream}",
                    connect_timeout=max(1, round(connect_timeout_s)),
                    # after the first connection: reconnect forever, a request meanwhile fails after its timeout
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    error_cb=self._on_error,
                    reconnected_cb=self._on_reconnected,
                ),
                connect_timeout_s,
            )
        except TimeoutError:
            raise ServiceUnavailable(f"NATS at {self._where} does not answer") from None
        js = self._nc.jetstream(timeout=REQUEST_TIMEOUT_S)
        await declare(js, self._layout)
        self._reply_to = self._nc.new_inbox()
        await self._nc.subscribe(self._reply_to, cb=self._on_pulled)
        # not the lanes' own subjects: a subscriber there would take the publish requests nothing answers
        # when the stream is gone (a no-responders error becomes a timeout)
        await self._nc.subscribe(self._layout.wake_subject, cb=self._on_published)
        await self._nc.subscribe(self._layout.exhausted_subject, queue=self._layout.dead_group,
                                 cb=self._on_exhausted)
        self._js = js
        await sweep(js, self._layout)
        return js

    async def _restore(self) -> None:
        """Create again what the server lost (restarted without its store): the streams and the consumer.
        Nothing is changed when both streams and the consumer are there."""
        async with self._restore_lock:
            if await declared(self._js, self._layout):
                return
            log.warning("NATS queue %s: the server lost the stream or its consumer; creating them again",
                        self._stream)
            await declare(self._js, self._layout)

    async def _on_reconnected(self) -> None:
        # in the background: the client calls this from its reconnecting task, before it reads again
        self._spawn(self._restore())

    async def _on_error(self, exc: Exception) -> None:
        # nats-py's default logs a traceback for every failed reconnect attempt
        log.warning("NATS at %s: %s", self._where, exc or type(exc).__name__)

    # -- the protocol ---------------------------------------------------------------------------------

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        self._run(self._publish_all([job_id], [Priority(priority)]))

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """Every publish sent before their acks are awaited (JetStream's async publish), then all acks."""
        lanes = lanes_of(job_ids, priorities)
        if job_ids:
            self._run(self._publish_all(job_ids, lanes))

    async def _publish_all(self, job_ids: Sequence[str], lanes: Sequence[Priority]) -> None:
        done = await asyncio.gather(*(self._publish(j, lane) for j, lane in zip(job_ids, lanes, strict=True)),
                                    return_exceptions=True)
        # stored now: wake the waiting receives of every instance (fire and forget; they look again anyway)
        with suppress(nats.errors.Error, OSError):
            await self._nc.publish(self._layout.wake_subject, b"")
        for outcome in done:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _publish(self, job_id: str, lane: Priority) -> None:
        subject = self._layout.subject_of(lane)
        try:
            await self._js.publish(subject, job_id.encode(), timeout=REQUEST_TIMEOUT_S, stream=self._stream)
        except nats.js.errors.NoStreamResponseError:
            # nothing stores the subject: the server came back without the stream; make it, then publish
            await self._restore()
            await self._js.publish(subject, job_id.encode(), timeout=REQUEST_TIMEOUT_S, stream=self._stream)

    async def _on_published(self, msg: Msg) -> None:
        self._published.set()

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        if self._closed:
            return None
        wait_s = max(0.0, wait_s)
        try:
            return self._run(self._receive(max(0.001, visibility_s), wait_s), wait_s + PULL_GRACE_S + OP_TIMEOUT_S)
        except ServiceUnavailable:
            if self._closed:
                return None
            raise

    async def _receive(self, visibility_s: float, wait_s: float) -> Message | None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._receiving.add(task)
        give_up = loop.time() + wait_s
        try:
            # one pull at a time per instance: answers are not tagged with the pull they answer
            try:
                async with asyncio.timeout_at(give_up + MIN_PULL_S):
                    await self._pull_lock.acquire()
            except TimeoutError:
                return None
            try:
                return await self._pull(visibility_s, give_up)
            finally:
                self._pull_lock.release()
        finally:
            self._receiving.discard(task)

    async def _pull(self, visibility_s: float, give_up: float) -> Message | None:
        """Lane by lane in serving order, ask the lane's consumer for what it has now (a no_wait pull); with
        nothing anywhere, wait for a publish to any lane (or RESCAN_S, for redeliveries and delayed naks,
        which publish nothing) and ask again."""
        loop = asyncio.get_running_loop()
        while True:
            # answers to earlier pulls first: a message that came after its receive gave up
            while not self._inbox.empty():
                arrived, msg = self._inbox.get_nowait()
                if _status(msg) is None and (message := await self._hand_out(arrived, msg, visibility_s)):
                    return message
            self._published.clear()
            for lane in await self._lanes_in_order():
                if message := await self._pull_one(lane, visibility_s):
                    if lane is Priority.LOW and self._low_promoted():
                        self._order_checked = -1e9  # a promoted low one went: is the next one overdue too?
                    return message
            left_s = give_up - loop.time()
            if left_s <= 0:
                return None
            with suppress(TimeoutError):
                async with asyncio.timeout(min(left_s, RESCAN_S)):
                    await self._published.wait()

    async def _pull_one(self, lane: Priority, visibility_s: float) -> Message | None:
        """One no_wait pull of one message from the lane's consumer; None when it has none now."""
        loop = asyncio.get_running_loop()
        self._pulls_open += 1
        self._pulls_end = max(self._pulls_end, loop.time())
        request = json.dumps({"batch": 1, "no_wait": True}).encode()
        await self._nc.publish(self._layout.next_subject_of(lane), request, reply=self._reply_to)
        try:
            async with asyncio.timeout(PULL_GRACE_S):
                arrived, msg = await self._inbox.get()
        except TimeoutError:
            # a consumer ends every pull with a status: no answer at all means the pull was lost with a
            # connection, or that nothing serves it (the server lost the consumer)
            if self._nc.is_connected and loop.time() - self._restore_checked >= RESTORE_CHECK_S:
                self._restore_checked = loop.time()
                self._spawn(self._restore())
            return None
        status = _status(msg)
        if status is None:
            return await self._hand_out(arrived, msg, visibility_s)
        if status not in ("404", "408"):  # 404, 408: nothing there
            log.warning("NATS queue %s: pull answered %s %s", self._stream, status, _description(msg))
        return None

    async def _lanes_in_order(self) -> tuple[Priority, ...]:
        """High, normal, low; low before normal while its oldest waiting message has waited low_max_wait_s
        and is older than normal's oldest (anti-starvation). Worked out at most every LANE_CHECK_S (so a low
        message may wait that much longer), and again after each low message served before normal."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._order_checked < LANE_CHECK_S:
            return self._order
        self._order_checked = loop.time()
        order = self._receive_lanes
        if Priority.NORMAL in order and Priority.LOW in order:
            low = await self._oldest_waiting(Priority.LOW)
            now = datetime.datetime.now(datetime.UTC)
            if low is not None and (now - low).total_seconds() >= self._low_max_wait_s:
                normal = await self._oldest_waiting(Priority.NORMAL)
                if normal is None or low < normal:
                    order = (*order[:-2], Priority.LOW, Priority.NORMAL)  # normal, low: the last two
        self._order = order
        return order

    def _low_promoted(self) -> bool:
        """Whether the lanes' order serves low before normal now (anti-starvation)."""
        order = self._order
        return Priority.NORMAL in order and Priority.LOW in order and order.index(Priority.LOW) < order.index(
            Priority.NORMAL)

    async def _oldest_waiting(self, lane: Priority) -> datetime.datetime | None:
        """When the lane's oldest never-delivered message was published (server clock); None when none."""
        info = await self._js.consumer_info(self._stream, self._layout.consumer_of(lane))
        if not info.num_pending or info.delivered is None:
            return None
        with suppress(nats.js.errors.NotFoundError):  # delivered or deleted since
            first = await self._js.get_msg(self._stream, info.delivered.stream_seq + 1,
                                           subject=self._layout.subject_of(lane), next=True)
            return first.time
        return None

    async def _on_pulled(self, msg: Msg) -> None:
        self._pulls_open = max(0, self._pulls_open - 1)
        self._inbox.put_nowait((asyncio.get_running_loop().time(), msg))

    async def _hand_out(self, arrived: float, msg: Msg, visibility_s: float) -> Message | None:
        loop = asyncio.get_running_loop()
        held = _Held(msg, visible_until=0.0, server_until=arrived + self._ack_wait_s)
        if not self._current(held):
            return None  # it sat here past its AckWait: the server hands it out again by itself
        if loop.time() - arrived > self._guard_s:
            # it waited here (its receive had given up): restart AckWait so the caller gets all of it
            sent = loop.time()
            await self._reply(msg, b"+WPI")
            held.server_until = sent + self._ack_wait_s
        held.visible_until = loop.time() + visibility_s
        receipt = secrets.token_urlsafe(12)
        self._held[receipt] = held
        self._schedule(receipt, held)
        return Message(receipt=receipt, job_id=msg.data.decode(errors="replace"),
                       deliveries=msg.metadata.num_delivered)

    def ack(self, message: Message) -> None:
        self._run(self._settle(message.receipt, b"+ACK"))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        payload = b"-NAK"
        if delay_s > 0:
            payload += b" " + json.dumps({"delay": int(delay_s * 1e9)}).encode()
        self._run(self._settle(message.receipt, payload, delay_s))

    async def _settle(self, receipt: str, payload: bytes, delay_s: float = 0.0) -> None:
        """Send an ack or a nak for a held delivery; nothing for an unknown or stale receipt."""
        held = self._held.get(receipt)
        if held is None:
            return
        if not self._current(held):
            self._forget(receipt)
            log.info("NATS queue %s: %r not sent, AckWait ran out (the message may be another consumer's now)",
                     self._stream, payload[:4].decode())
            return
        # a request, not a publish: the answer says the server took it (kept for a retry if not)
        await self._reply(held.msg, payload)
        self._forget(receipt)
        if delay_s > 0:
            now = asyncio.get_running_loop().time()
            self._delayed = {r: due for r, due in self._delayed.items() if due > now}
            self._delayed[receipt] = now + delay_s

    def extend(self, message: Message, visibility_s: float) -> None:
        self._run(self._extend(message.receipt, visibility_s))

    async def _extend(self, receipt: str, visibility_s: float) -> None:
        held = self._held.get(receipt)
        if held is None:
            return
        if not self._current(held):
            self._forget(receipt)
            return
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await self._reply(held.msg, b"+WPI")
        if self._held.get(receipt) is held:
            held.server_until = sent + self._ack_wait_s
            held.visible_until = sent + visibility_s
            self._schedule(receipt, held)

    def stats(self) -> QueueStats:
        return self._run(self._stats())

    async def _stats(self) -> QueueStats:
        infos = {lane: await self._js.consumer_info(self._stream, self._layout.consumer_of(lane))
                 for lane in PRIORITIES}
        dead = await self._js.stream_info(self._layout.dead_stream)
        now = asyncio.get_running_loop().time()
        self._delayed = {r: due for r, due in self._delayed.items() if due > now}
        ready = sum(info.num_pending or 0 for info in infos.values())
        unacked = sum(info.num_ack_pending or 0 for info in infos.values())
        age_s = 0.0
        for lane in PRIORITIES:
            first = await self._oldest_waiting(lane) if infos[lane].num_pending else None
            if first is not None:
                age_s = max(age_s, (datetime.datetime.now(datetime.UTC) - first).total_seconds())
        return QueueStats(
            ready=ready, in_flight=max(0, unacked - len(self._delayed)),
            delayed=len(self._delayed), dead=dead.state.messages, oldest_ready_age_s=age_s,
            # the naks with a delay are this instance's only, and their lanes unknown: the never-delivered
            waiting_by_priority={lane: infos[lane].num_pending or 0 for lane in PRIORITIES},
        )

    def take_dead(self, limit: int) -> list[str]:
        if limit < 1:
            return []
        return self._run(take_dead(self._js, self._layout, limit))

    def close(self) -> None:
        """Stop receiving, hand back messages that reached this instance after their receive gave up, and
        close the connection. Deliveries still held come back when their AckWait runs out."""
        if self._closed:
            return
        self._closed = True
        if self._aio.loop.is_running():
            with suppress(Exception):  # closing must not fail because NATS is gone
                self._aio.run(self._shutdown(), OP_TIMEOUT_S)
        self._aio.close()

    async def _shutdown(self) -> None:
        loop = asyncio.get_running_loop()
        for task in list(self._receiving):
            task.cancel()
        for held in self._held.values():
            if held.timer is not None:
                held.timer.cancel()
        if self._background:
            await asyncio.wait(list(self._background), timeout=REQUEST_TIMEOUT_S)
        # a pull still open may yet deliver; its message would otherwise wait out AckWait
        give_up = min(self._pulls_end, loop.time() + 2.0) + 0.1
        while self._pulls_open and self._nc.is_connected and loop.time() < give_up:
            await asyncio.sleep(0.02)
        while not self._inbox.empty():
            arrived, msg = self._inbox.get_nowait()
            held = _Held(msg, visible_until=0.0, server_until=arrived + self._ack_wait_s)
            if _status(msg) is None and self._current(held):
                with suppress(nats.errors.Error, OSError, TimeoutError):
                    await self._reply(msg, b"-NAK")
        if self._nc.is_connected:
            try:
                await asyncio.wait_for(self._nc.drain(), REQUEST_TIMEOUT_S)
            except (nats.errors.Error, OSError, TimeoutError):
                await self._nc.close()
        else:
            await self._nc.close()

    # -- visibility ----------------------------------------------------------------------------------

    def _current(self, held: _Held) -> bool:
        """Whether the delivery is surely still this instance's: its AckWait, counted from here, has not
        run out (the guard covers the server's clock starting earlier and the ack's trip there)."""
        return asyncio.get_running_loop().time() < held.server_until - self._guard_s

    def _schedule(self, receipt: str, held: _Held) -> None:
        if held.timer is not None:
            held.timer.cancel()
        # the visibility's end, or half-way through AckWait when the visibility outlasts it
        at = min(held.visible_until, held.server_until - self._ack_wait_s / 2)
        held.timer = asyncio.get_running_loop().call_at(at, self._on_timer, receipt)

    def _on_timer(self, receipt: str) -> None:
        held = self._held.get(receipt)
        if held is None:
            return
        if not self._current(held):
            self._forget(receipt)  # the loop was frozen past AckWait: the message is the server's again
        elif asyncio.get_running_loop().time() >= held.visible_until:
            self._forget(receipt)
            self._spawn(self._reply(held.msg, b"-NAK"))  # visibility over: the next consumer gets it now
        else:
            self._spawn(self._refresh(receipt, held))

    async def _refresh(self, receipt: str, held: _Held) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            await self._reply(held.msg, b"+WPI")
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.warning("NATS queue %s: AckProgress failed (%s), trying again", self._stream, exc)
            if self._held.get(receipt) is held:
                held.timer = loop.call_later(1.0, self._on_timer, receipt)
            return
        if self._held.get(receipt) is held:
            held.server_until = sent + self._ack_wait_s
            self._schedule(receipt, held)

    def _forget(self, receipt: str) -> None:
        held = self._held.pop(receipt, None)
        if held is not None and held.timer is not None:
            held.timer.cancel()

    async def _reply(self, msg: Msg, payload: bytes) -> None:
        """Ack, nak or AckProgress as a request, so a lost one raises instead of passing silently."""
        assert msg.reply, "a JetStream delivery always has an ack subject"
        await self._nc.request(msg.reply, payload, timeout=REQUEST_TIMEOUT_S)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("NATS queue %s: %s", self._stream, exc or type(exc).__name__)

    # -- dead letters --------------------------------------------------------------------------------

    async def _on_exhausted(self, advisory: Msg) -> None:
        await on_exhausted(self._js, self._layout, advisory)

    # -- plumbing ------------------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, T], timeout_s: float = OP_TIMEOUT_S) -> T:
        if self._closed and not self._aio.loop.is_running():
            coro.close()
            raise ServiceUnavailable("the NATS broker is closed")
        try:
            return self._aio.run(coro, timeout_s)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise ServiceUnavailable(f"NATS at {self._where}: {exc or type(exc).__name__}") from exc
        except (concurrent.futures.CancelledError, RuntimeError) as exc:
            if self._closed:  # close() cancelled this call, or stopped the loop under it
                raise ServiceUnavailable("the NATS broker is closed") from exc
            raise


def _status(msg: Msg) -> str | None:
    """The status of a pull's control answer (404 no messages, 408 expired, 409 ...), None for a message."""
    if msg.data or not msg.headers:
        return None
    status = msg.headers.get("Status")
    return None if status is None else str(status)


def _description(msg: Msg) -> str:
    return str((msg.headers or {}).get("Description", ""))
