"""A Redis Streams queue, one stream per lane, each with one consumer group. Contract:
framequeue.brokers.base.Broker.

Needs Redis 6.2 or later (XPENDING ranges, exclusive XRANGE, LPOP with a count); tested on 7.0.

Client: redis.asyncio driven through framequeue.brokers.aio.LoopThread, as the other network backends do. The
async pool lets one instance keep a receive blocked in XREAD while a heartbeat thread extends or acks on
another connection, and lets close() cancel that blocked read instead of waiting it out; redis-py drops a
connection whose command was cancelled, so a cancelled read cannot poison the pool.

Keys per queue Q and lane L (the braces are a Redis Cluster hash tag: one slot, so a script may touch all
of them). The normal lane has no `:L` part (the keys of the queue before lanes); high is `:high`, low `:low`:

    fq:{Q}:L:stream    XADD'ed entries {job: <job id>, n: <deliveries before this entry>}; group "fq".
                       Never trimmed (trimming drops pending work): settled entries are XDEL'ed one by one.
    fq:{Q}:L:deadline  hash entry id -> visibility deadline, ms of Redis' clock (one clock for every host)
    fq:{Q}:L:delayed   zset of nacks with a delay, score = due ms, member "<old id>|<deliveries>|<job id>"
    fq:{Q}:dead        list of dead-lettered job ids (one for all lanes)

Redis has no server-side lease: a pending entry stays with its consumer forever unless someone claims it.
Every receive therefore runs NEXT, one script over the lanes it receives from (URL option `lanes`, default
all): it moves due retries to their lane's stream, then, lane by lane in serving order (high, normal, low; low
before normal once its oldest new entry has waited low_max_wait_s and is older than normal's), XCLAIMs a
pending entry of the lane whose own deadline has passed (XAUTOCLAIM takes one min-idle for all entries, but
visibility is chosen per delivery by its holder), else reads a new entry of the lane with a non-blocking
XREADGROUP. With nothing in any lane it answers each group's last-delivered id, and the receive blocks in a
plain XREAD past those ids (which takes nothing) until an entry arrives or a pending one may come due, then
runs NEXT again. A delivery whose deadline was never recorded counts from its delivery time with the
reclaimer's visibility.

Receipt: "<entry id>|<delivery count in the group's PEL>|<consumer>", plus "|high" or "|low" for those
lanes. ack, nack and extend act only while that entry is still pending to that consumer with that count,
checked in the same script: a holder whose delivery was reclaimed (the claim moves it and counts one more
delivery) touches nothing. A retry (nack) is a new entry of the same lane carrying the deliveries so far in
`n`, so the dead-letter limit holds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import secrets
import socket
from collections.abc import Awaitable, Coroutine, Sequence
from contextlib import suppress
from typing import ClassVar, Literal, TypeVar
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
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from framequeue.brokers.aio import LoopThread
from framequeue.brokers.base import Message, QueueStats, lanes_of
from framequeue.brokers.urls import parse_broker_url
from framequeue.errors import ServiceUnavailable
from framequeue.jobs import PRIORITIES, Priority

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
-- the group's last-delivered id, and the ms time of the first entry after it (nil when none)
local function head()
  local last = '0-0'
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == group then last = info['last-delivered-id'] end
  end
  local first = redis.call('XRANGE', stream, '(' .. last, '+', 'COUNT', 1)
  if #first == 0 then return last, nil end
  return last, tonumber(string.match(first[1][1], '^(%d+)'))
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

# KEYS: four per receiving lane, highest lane first: stream, deadline, delayed, dead (the one dead list each
# time). ARGV consumer vis_ms max_deliveries rescan_ms batch low_max_wait_ms normal_at low_at (the normal and
# low lanes' places among KEYS' lanes, 1-based; 0 for a lane this consumer does not receive from).
# Per lane in serving order: a stale delivery of the lane (reclaimed), else a new entry of the lane
# (XREADGROUP, which a script runs without blocking). The order is high, normal, low, except that low goes
# before normal when its oldest new entry waited low_max_wait_ms and is older than normal's (anti-starvation).
# A message {'m', lane, id, job, deliveries, count}, or {'w', ms until something may come due, then each
# lane's last-delivered id}: what a blocking XREAD waits past for a new entry.
_NEXT = (
    _LUA_COMMON
    + """
local consumer, vis_ms, max, batch = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[5])
local low_wait_ms = tonumber(ARGV[6])
local now = now_ms()
local next_due = now + tonumber(ARGV[4])
local lanes = #KEYS / 4
local function use(lane)
  local b = (lane - 1) * 4
  stream, deadlines, delayed, dead = KEYS[b + 1], KEYS[b + 2], KEYS[b + 3], KEYS[b + 4]
end
-- a pending delivery of the current lane whose deadline passed, now this consumer's (or nil)
local function reclaim()
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
    if #page < batch then return nil end
    start = '(' .. page[#page][1]
  end
end
-- a new entry of the current lane, now this consumer's (or nil)
local function read_new()
  while true do
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 1, 'STREAMS', stream, '>')
    if not r or not r[1] or #r[1][2] == 0 then return nil end
    local entry = r[1][2][1]
    local job, prior = parse(entry[2])
    local msg = hand_out(entry[1], job, prior, 1, vis_ms, max, now)
    if msg then return msg end
  end
end
local cursors, oldest = {}, {}
for lane = 1, lanes do
  use(lane)
  ensure_group()
  -- due retries go to the lane's tail, where they are read as new entries (and wake blocked readers)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', delayed, '-inf', now, 'LIMIT', 0, batch)) do
    local prior, job = string.match(m, '^[^|]*|(%d+)|(.*)$')
    redis.call('XADD', stream, '*', 'job', job, 'n', prior)
    redis.call('ZREM', delayed, m)
  end
  local first = redis.call('ZRANGE', delayed, 0, 0, 'WITHSCORES')
  if #first > 0 then next_due = math.min(next_due, tonumber(first[2])) end
  cursors[lane], oldest[lane] = head()
end
local order = {}
for lane = 1, lanes do order[lane] = lane end
local normal_at, low_at = tonumber(ARGV[7]), tonumber(ARGV[8])
if normal_at > 0 and low_at > 0 and oldest[low_at] and now - oldest[low_at] >= low_wait_ms
   and (not oldest[normal_at] or oldest[low_at] < oldest[normal_at]) then
  order[normal_at], order[low_at] = low_at, normal_at
end
for _, lane in ipairs(order) do
  use(lane)
  local msg = reclaim() or (oldest[lane] and read_new())
  if msg then return {'m', tostring(lane), msg[1], msg[2], msg[3], msg[4]} end
end
local out = {'w', tostring(math.max(0, next_due - now))}
for lane = 1, lanes do out[#out + 1] = cursors[lane] end
return out
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
  local _, oldest_ms = head()
  if oldest_ms ~= nil then age_ms = math.max(0, now_ms() - oldest_ms) end
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
        self._low_max_wait_s = opts.low_max_wait_s
        prefix = f"fq:{{{opts.queue}}}"
        #: per lane, highest first: stream, deadline, delayed, dead (one dead list for all lanes). The normal
        #: lane keeps the keys of the queue before lanes, so messages published then are still served
        self._lanes: dict[Priority, list[str]] = {
            lane: [f"{prefix}{infix}:stream", f"{prefix}{infix}:deadline", f"{prefix}{infix}:delayed",
                   f"{prefix}:dead"]
            for lane, infix in ((Priority.HIGH, ":high"), (Priority.NORMAL, ""), (Priority.LOW, ":low"))
        }
        #: the lanes receive takes from (URL option `lanes`), in serving order, and their keys for NEXT
        self._receive_lanes: tuple[Priority, ...] = opts.lanes
        self._receive_keys = [key for lane in self._receive_lanes for key in self._lanes[lane]]
        self._dead = f"{prefix}:dead"
        #: one consumer per instance; a reclaimed delivery names its new holder
        self._consumer = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._closed = False
        self._aio = LoopThread(f"redis-{opts.queue}")
        self._client: aioredis.Redis = self._aio.run(self._connect(opts.server_url), OP_TIMEOUT_S)
        register = self._client.register_script
        self._next, self._ack, self._nack = register(_NEXT), register(_ACK), register(_NACK)
        self._extend, self._stats, self._forget = register(_EXTEND), register(_STATS), register(_FORGET)

    @staticmethod
    async def _connect(server_url: str) -> aioredis.Redis:
        # built on the loop that will use it; connects lazily, on the first command
        client: aioredis.Redis = aioredis.Redis.from_url(
            server_url,
            decode_responses=True,
            # RESP2: the reply shapes the scripts and XREAD answer with
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
        self._run(self._client.xadd(self._lanes[Priority(priority)][0], {"job": job_id}))

    def publish_many(self, job_ids: Sequence[str], priorities: Sequence[Priority] | None = None) -> None:
        """Every XADD (each to its lane's stream) in one pipeline: one round trip (not a MULTI: a repeat after
        a cut connection costs duplicates at most)."""
        lanes = lanes_of(job_ids, priorities)
        if job_ids:
            self._run(self._xadd_all(job_ids, lanes))

    async def _xadd_all(self, job_ids: Sequence[str], lanes: Sequence[Priority]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for job_id, lane in zip(job_ids, lanes, strict=True):
                pipe.xadd(self._lanes[lane][0], {"job": job_id})
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
        args: list[str | int] = [self._consumer, vis_ms, self._max_deliveries, round(RESCAN_S * 1000), BATCH,
                round(self._low_max_wait_s * 1000), self._place(Priority.NORMAL), self._place(Priority.LOW)]
        while True:
            found = [str(v) for v in await self._next(self._receive_keys, args)]
            if found[0] == "m":
                return self._message(found[1:])
            # nothing now: wait for a new entry in any lane (XREAD past each group's last-delivered id takes
            # nothing), or until a stale delivery or a retry may come due; BLOCK 0 would wait forever
            block_ms = int(min((give_up - loop.time()) * 1000, float(found[1])))
            woke = False
            if block_ms >= 1:
                streams: dict[bytes | str | memoryview, int | bytes | str | memoryview] = {
                    self._lanes[lane][0]: cursor for lane, cursor in zip(self._receive_lanes, found[2:], strict=True)
                }
                woke = bool(await self._client.xread(streams, count=1, block=block_ms))
            if not woke and loop.time() >= give_up:
                return None

    def _place(self, lane: Priority) -> int:
        """The lane's 1-based place among the receiving lanes (NEXT's KEYS), 0 when not among them."""
        return self._receive_lanes.index(lane) + 1 if lane in self._receive_lanes else 0

    def _message(self, found: list[str]) -> Message:
        lane, entry_id, job_id, deliveries, count = found
        priority = self._receive_lanes[int(lane) - 1]
        suffix = "" if priority is Priority.NORMAL else f"|{priority.value}"
        return Message(receipt=f"{entry_id}|{count}|{self._consumer}{suffix}", job_id=job_id,
                       deliveries=int(deliveries))

    def _keys_of(self, message: Message) -> list[str]:
        return self._lanes[_lane(message)]

    def ack(self, message: Message) -> None:
        self._run(self._ack(self._keys_of(message)[:2], _receipt(message)))

    def nack(self, message: Message, delay_s: float = 0.0) -> None:
        self._run(self._nack(self._keys_of(message)[:3], [*_receipt(message), max(0, round(delay_s * 1000))]))

    def extend(self, message: Message, visibility_s: float) -> None:
        self._run(self._extend(self._keys_of(message)[:2], [*_receipt(message), max(1, round(visibility_s * 1000))]))

    def stats(self) -> QueueStats:
        return self._run(self._lane_stats())

    async def _lane_stats(self) -> QueueStats:
        ready = in_flight = delayed = dead = age_ms = 0
        waiting: dict[Priority, int] = {}
        for lane in PRIORITIES:
            r, f, d, dead, a = (int(v) for v in await self._stats(self._lanes[lane]))
            ready, in_flight, delayed, age_ms = ready + r, in_flight + f, delayed + d, max(age_ms, a)
            waiting[lane] = r + d
        return QueueStats(ready=ready, in_flight=in_flight, delayed=delayed, dead=dead,
                          oldest_ready_age_s=age_ms / 1000, waiting_by_priority=waiting)

    def take_dead(self, limit: int) -> list[str]:
        if limit < 1:
            return []
        taken = self._run(self._client.lpop(self._dead, limit))  # a list with a count, None when empty
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
            for lane in PRIORITIES:
                await asyncio.wait_for(self._forget(self._lanes[lane][:1], [self._consumer]), 2.0)
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


def _lane(message: Message) -> Priority:
    parts = message.receipt.split("|")
    return Priority(parts[3]) if len(parts) > 3 else Priority.NORMAL


def _receipt(message: Message) -> list[str]:
    entry_id, count, consumer = message.receipt.split("|")[:3]
    return [entry_id, consumer, count]
