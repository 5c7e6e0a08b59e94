"""A Redis Streams queue with one consumer group. Contract: framequeue.brokers.base.Broker.

Needs Redis 6.2 or later (XPENDING ranges, exclusive XRANGE, LPOP with a count); tested on 7.0.

Client: redis.asyncio driven through framequeue.brokers.aio.LoopThread, as the other network backends do. The
async pool lets one instance keep a receive blocked in XREADGROUP while a heartbeat thread extends or
acks on another connection, and lets close() cancel that blocked read instead of waiting it out;
redis-py drops a connection whose command was cancelled, so a cancelled read cannot poison the pool.

Keys per queue Q (the braces are a Redis Cluster hash tag: one slot, so a script may touch all of them):

    fq:{Q}:stream    XADD'ed entries {job: <job id>, n: <deliveries before this entry>}; group "fq".
                     Never trimmed (trimming drops pending work): settled entries are XDEL'ed one by one.
    fq:{Q}:deadline  hash entry id -> visibility deadline, ms of Redis' clock (one clock for every host)
    fq:{Q}:delayed   zset of nacks with a delay, score = due ms, member "<old id>|<deliveries>|<job id>"
    fq:{Q}:dead      list of dead-lettered job ids

Redis has no server-side lease: a pending entry stays with its consumer forever unless someone claims
it. Every receive therefore first runs RECLAIM, which XCLAIMs a pending entry whose own deadline has
passed (XAUTOCLAIM takes one min-idle for all entries, but visibility is chosen per delivery by its
holder), then blocks in XREADGROUP for new entries. A delivery whose deadline was never recorded (its
consumer died between XREADGROUP and TAKE) counts from its delivery time with the reclaimer's visibility.

Receipt: "<entry id>|<delivery count in the group's PEL>|<consumer>". ack, nack and extend act only
while that entry is still pending to that consumer with that count, checked in the same script: a
holder whose delivery was reclaimed (the claim moves it and counts one more delivery) touches nothing.
A retry (nack) is a new entry carrying the deliveries so far in `n`, so the dead-letter limit holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import socket
from collections.abc import Awaitable, Coroutine, Sequence
from contextlib import suppress
from typing import Any, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from framequeue.brokers.aio import LoopThread
from framequeue.brokers.base import Message, QueueStats
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import ServiceUnavailable
from framequeue.jobs import Priority

T = TypeVar("T")

GROUP = "fq"
#: a call that has not finished after this long (plus its wait) means Redis is unavailable
OP_TIMEOUT_S = 10.0
#: a connection silent this long is dropped and retried; above the longest XREADGROUP block (RESCAN_S)
SOCKET_TIMEOUT_S = 5.0
#: a waiting receive looks again at least this often for expired deliveries and due retries that other
#: consumers left (only new entries wake XREADGROUP)
RESCAN_S = 1.0
#: entries promoted from the delayed set, and pending entries read, per script page
BATCH = 100

# Shared by every script. KEYS: stream, deadline, delayed, dead (a script names only those it needs).
_LUA_COMMON = """
local stream, deadlines, delayed, dead = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group = 'fq'
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- at 0, so entries published before any consumer came are delivered; the stream vanishes with a restart
local function ensure_group()
  pcall(redis.call, 'XGROUP', 'CREATE', stream, group, '0', 'MKSTREAM')
end
-- owner and delivery count of a pending entry, or nil
local function pending(id)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  if #p == 0 then return nil, 0 end
  return p[1][2], tonumber(p[1][4])
end
local function holds(id, consumer, count)
  local owner, n = pending(id)
  return owner == consumer and n == tonumber(count)
end
-- job id and deliveries before this entry, from its field list
local function parse(f)
  local job, prior = nil, 0
  for i = 1, #f, 2 do
    if f[i] == 'job' then job = f[i + 1] elseif f[i] == 'n' then prior = tonumber(f[i + 1]) end
  end
  return job, prior
end
local function fields(id)
  local e = redis.call('XRANGE', stream, id, id)
  if #e == 0 then return nil, 0 end
  return parse(e[1][2])
end
-- XACK + XDEL together: an acked entry must not stay in the stream, a pending one must not be deleted
local function settle(id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
  redis.call('HDEL', deadlines, id)
end
-- a delivery this consumer now holds: dead-letter it past the limit, else start its visibility
local function hand_out(id, job, prior, count, vis_ms, max, now)
  if job == nil or prior + count > max then
    settle(id)
    if job ~= nil then redis.call('RPUSH', dead, job) end
    return nil
  end
  redis.call('HSET', deadlines, id, now + vis_ms)
  return {id, job, tostring(prior + count), tostring(count)}
end
"""

# KEYS stream deadline delayed dead; ARGV consumer vis_ms max_deliveries rescan_ms.
# A message {id, job, deliveries, count}, or {ms until something may come due}.
_RECLAIM = (
    _LUA_COMMON
    + """
ensure_group()
local consumer, vis_ms, max, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local now = now_ms()
local next_due = now + tonumber(ARGV[4])
-- due retries go to the stream's tail, where XREADGROUP hands them out (and wakes blocked readers)
for _, m in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, batch)) do
  local prior, job = string.match(m, '^[^|]*|(%d+)|(.*)$')
  redis.call('XADD', stream, '*', 'job', job, 'n', prior)
  redis.call('ZREM', delayed, m)
end
local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
if #first > 0 then next_due = math.min(next_due, tonumber(first[2])) end
-- the PEL holds only in-flight deliveries (consumers x prefetch), so a scan per receive is cheap
local start = '-'
while true do
  local page = redis.call('XPENDING', stream, group, start, '+', batch)
  for _, p in ipairs(page) do
    local id = p[1]
    local due = tonumber(redis.call('HGET', deadlines, id) or (now - p[3] + vis_ms))
    if due > now then
      next_due = math.min(next_due, due)
    else
      local claimed = redis.call('XCLAIM', stream, group, consumer, 0, id)
      if #claimed == 0 or not claimed[1] then
        -- the entry was deleted under its PEL entry (not by this module: it settles both at once)
        redis.call('XACK', stream, group, id)
        redis.call('HDEL', deadlines, id)
      else
        local job, prior = parse(claimed[1][2])
        local _, count = pending(id)
        local msg = hand_out(id, job, prior, count, vis_ms, max, now)
        if msg then return msg end
      end
    end
  end
  if #page < batch then break end
  start = '(' .. page[#page][1]
end
return {tostring(math.max(0, next_due - now))}
"""
)

# KEYS stream deadline delayed dead; ARGV consumer id vis_ms max_deliveries. Registers an XREADGROUP
# delivery: a message {id, job, deliveries, count}, or {} when it was dead-lettered or already reclaimed.
_TAKE = (
    _LUA_COMMON
    + """
local consumer, id = ARGV[1], ARGV[2]
local owner, count = pending(id)
if owner ~= consumer then return {} end
local job, prior = fields(id)
return hand_out(id, job, prior, count, tonumber(ARGV[3]), tonumber(ARGV[4]), now_ms()) or {}
"""
)

# KEYS stream deadline; ARGV id consumer count. 1 when acked, 0 for a stale receipt.
_ACK = (
    _LUA_COMMON
    + """
ensure_group()
if not holds(ARGV[1], ARGV[2], ARGV[3]) then return 0 end
settle(ARGV[1])
return 1
"""
)

# KEYS stream deadline delayed; ARGV id consumer count delay_ms. 1 when requeued, 0 for a stale receipt.
_NACK = (
    _LUA_COMMON
    + """
ensure_group()
local id, delay_ms = ARGV[1], tonumber(ARGV[4])
if not holds(id, ARGV[2], ARGV[3]) then return 0 end
local job, prior = fields(id)
settle(id)
if job == nil then return 1 end
local deliveries = prior + tonumber(ARGV[3])
if delay_ms <= 0 then
  redis.call('XADD', stream, '*', 'job', job, 'n', deliveries)
else
  redis.call('ZADD', delayed, now_ms() + delay_ms, id .. '|' .. deliveries .. '|' .. job)
end
return 1
"""
)

# KEYS stream deadline; ARGV id consumer count vis_ms. 1 when extended, 0 for a stale receipt.
_EXTEND = (
    _LUA_COMMON
    + """
ensure_group()
local id, consumer = ARGV[1], ARGV[2]
if not holds(id, consumer, ARGV[3]) then return 0 end
-- a JUSTID claim to itself resets the idle time (XPENDING then shows time since the last heartbeat)
-- without counting a delivery
redis.call('XCLAIM', stream, group, consumer, 0, id, 'JUSTID')
redis.call('HSET', deadlines, id, now_ms() + tonumber(ARGV[4]))
return 1
"""
)

# KEYS stream deadline delayed dead. {ready, in_flight, delayed, dead, oldest ready age ms}.
_STATS = (
    _LUA_COMMON
    + """
ensure_group()
-- every settled entry is deleted, so the stream holds exactly the undelivered and the pending ones
local length = redis.call('XLEN', stream)
local in_flight = tonumber(redis.call('XPENDING', stream, group)[1])
local age_ms = 0
if length > in_flight then
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then last = info['last-delivered-id'] end
  end
  local oldest = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)
  if #oldest > 0 then
    age_ms = math.max(0, now_ms() - tonumber(string.match(oldest[1][1], '^(%d+)')))
  end
end
return {length - in_flight, in_flight, redis.call('ZCARD', delayed), redis.call('LLEN', dead), tostring(age_ms)}
"""
)

# KEYS stream; ARGV consumer. Deleting a consumer drops its pending entries, so only an empty one goes.
_FORGET = (
    _LUA_COMMON
    + """
if #redis.call('XPENDING', stream, group, '-', '+', 1, ARGV[1]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', stream, group, ARGV[1])
end
return 1
"""
)


class RedisBroker:
    #: a pending entry comes back when RECLAIM finds its deadline passed
    redelivery: ClassVar[Literal["visibility", "connection"]] = "visibility"

    def __init__(self, url: str) -> None:
        opts = parse_broker_url(url)
        parts = urlsplit(opts.server_url)
        #: for error messages: never the password
        self._where = f"{parts.hostname or 'localhost'}:{parts.port or 6379}"
        self._max_deliveries = opts.max_deliveries
        prefix = f"fq:{{{opts.queue}}}"
        self._stream = f"{prefix}:stream"
        self._keys = [self._stream, f"{prefix}:deadline", f"{prefix}:delayed", f"{prefix}:dead"]
        #: one consumer per instance; a reclaimed delivery names its new holder
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._closed = False
        self._aio = LoopThread(f"redis-{opts.queue}")
        self._client: aioredis.Redis = self._aio.run(self._connect(opts.server_url), OP_TIMEOUT_S)
        register = self._client.register_script
        self._reclaim, self._take, self._ack = register(_RECLAIM), register(_TAKE), register(_ACK)
        self._nack, self._extend, self._stats = register(_NACK), register(_EXTEND), register(_STATS)
        self._forget = register(_FORGET)

    @staticmethod
    async def _connect(server_url: str) -> aioredis.Redis:
        # built on the loop that will use it; connects lazily, on the first command
        client: aioredis.Redis = aioredis.Redis.from_url(
            server_url,
            decode_responses=True,
            # RESP2: the XREADGROUP reply shape parsed in _entry_id
            protocol=2,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            # a few quick reconnects; redis-py's default (10, up to 1 s apart) would hold a submit for
            # seconds before its 503. Every command here tolerates a repeat: scripts check the receipt
            # again, a repeated XADD is a duplicate delivery the job store absorbs
            retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        )
        return client

    def publish(self, job_id: str, priority: Priority = Priority.NORMAL) -> None:
        self._run(self._client.xadd(self._stream, {"job": job_id}))

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """Every XADD in one pipeline: one round trip (not a MULTI: a repeat after a cut connection costs
        duplicates at most)."""
        if job_ids:
            self._run(self._xadd_all(job_ids))

    async def _xadd_all(self, job_ids: Sequence[str]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.xadd(self._stream, {"job": job_id})
            await pipe.execute()

    def receive(self, visibility_s: float, wait_s: float) -> Message | None:
        if self._closed:
            return None
        wait_s = max(0.0, wait_s)
        try:
            return self._run(self._receive(max(1, round(visibility_s * 1000)), wait_s), wait_s + OP_TIMEOUT_S)
        except ServiceUnavailable:
            if self._closed:
                return None
            raise

    async def _receive(self, vis_ms: int, wait_s: float) -> Message | None:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + wait_s
        args = (self._consumer, vis_ms, self._max_deliveries)
        while True:
            found = await self._reclaim(self._keys, [*args, round(RESCAN_S * 1000), BATCH])
            if len(found) == 4:
                return self._message(found)
            # BLOCK 0 would wait forever: under 1 ms left means one look without blocking
            block_ms = int(min((give_up - loop.time()) * 1000, float(found[0])))
            entry_id = await self._read(block_ms if block_ms >= 1 else None)
            if entry_id is not None:
                taken = await self._take(self._keys, [self._consumer, entry_id, vis_ms, self._max_deliveries])
                if taken:
                    return self._message(taken)
            elif loop.time() >= give_up:
                return None

    async def _read(self, block_ms: int | None) -> str | None:
        try:
            reply = await self._client.xreadgroup(
                GROUP, self._consumer, {self._stream: ">"}, count=1, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # the stream was deleted (a restart without persistence): start over from its first entry
            with suppress(ResponseError):
                await self._client.xgroup_create(self._stream, GROUP, "0", mkstream=True)
            return None
        return _entry_id(reply)

    def _message(self, found: list[Any]) -> Message:
        entry_id, job_id, deliveries, count = (str(v) for v in found)
        return Message(receipt=f"{entry_id}|{count}|{self._consumer}", job_id=job_id, deliveries=int(deliveries))

    def ack(self, message: Message) -> None:
        self._run(self._ack(self._keys[:2], _receipt(message)))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        self._run(self._nack(self._keys[:3], [*_receipt(message), max(0, round(delay_s * 1000))]))

    def extend(self, message: Message, visibility_s: float) -> None:
        self._run(self._extend(self._keys[:2], [*_receipt(message), max(1, round(visibility_s * 1000))]))

    def stats(self) -> QueueStats:
        ready, in_flight, delayed, dead, age_ms = self._run(self._stats(self._keys))
        return QueueStats(
            ready=int(ready), in_flight=int(in_flight), delayed=int(delayed), dead=int(dead),
            oldest_ready_age_s=int(age_ms) / 1000,
        )

    def take_dead(self, limit: int) -> list[str]:
        if limit < 1:
            return []
        taken = self._run(self._client.lpop(self._keys[3], limit))  # a list with a count, None when empty
        return [str(job_id) for job_id in taken] if isinstance(taken, list) else []

    def close(self) -> None:
        """Cancel a blocked receive, release the connections and stop the loop; unacked deliveries stay
        pending and come back to other consumers when their visibility runs out."""
        if self._closed:
            return
        self._closed = True
        with suppress(Exception):  # closing must not fail because Redis is gone
            self._aio.run(self._shutdown(), OP_TIMEOUT_S)
        self._aio.close()

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        with suppress(RedisError, OSError):
            await asyncio.wait_for(self._forget(self._keys[:1], [self._consumer]), 2.0)
        await self._client.aclose()

    def _run(self, call: Awaitable[T], timeout_s: float = OP_TIMEOUT_S) -> T:
        if self._closed:
            if isinstance(call, Coroutine):
                call.close()
            raise ServiceUnavailable("the Redis broker is closed")
        try:
            return self._aio.run(_awaited(call), timeout_s)
        except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
            raise ServiceUnavailable(f"Redis at {self._where} does not answer ({type(exc).__name__})") from exc
        except (OutOfMemoryError, ReadOnlyError) as exc:
            raise ServiceUnavailable(f"Redis at {self._where} refuses writes ({type(exc).__name__})") from exc
        except (concurrent.futures.CancelledError, RuntimeError) as exc:
            if self._closed:  # close() cancelled this call, or stopped the loop under it
                raise ServiceUnavailable("the Redis broker is closed") from exc
            raise


async def _awaited(call: Awaitable[T]) -> T:
    return await call


def _receipt(message: Message) -> list[str]:
    entry_id, count, consumer = message.receipt.split("|", 2)
    return [entry_id, consumer, count]


def _entry_id(reply: Any) -> str | None:
    """The first entry id of a RESP2 XREADGROUP reply: [[stream, [(id, fields), ...]]], or None."""
    for _stream, entries in reply or []:
        for entry_id, _fields in entries:
            return str(entry_id)
    return None
