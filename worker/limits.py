"""The vendors' rules, held in Redis for the whole fleet (docs/design.md, promise 3).

For one vendor product ("scope", e.g. `veesing:sms`) and a batch of numbers, `reserve` decides in
one atomic Lua call which numbers may go now:

- one message per number per `minute_s` (a key per number with a TTL),
- at most `per_number_daily` per number and `per_account_daily` for the scope per vendor day,
  which is the calendar day in Asia/Shanghai (counters keyed by that date).

Numbers held back come with the time they may go. A reservation is given back (`release`) when
the vendor provably did not send, so a refused call eats no quota.

Redis may restart without persistence and forget today's counters, which would let the caps be
exceeded silently. So a day's counters only count once the day is *seeded*: the first `reserve`
that finds no seed marker asks the store (`DaySeed`) what was already submitted today, writes it,
and sets the marker; until then every reserve waits for the seed.

A separate token bucket (`acquire_request`) caps vendor requests per second for the scope.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol
from uuid import uuid4

from worker.clock import next_vendor_midnight, vendor_day, vendor_day_start
from worker.names import LIMIT_KEY_PREFIX

DAY_KEY_TTL_S = 2 * 24 * 3600
HoldReason = Literal["minute", "number_day", "account_day"]


@dataclass(frozen=True)
class LimitRules:
    """One vendor product's rules. None switches a cap off."""

    minute_s: float = 60.0
    per_number_daily: int | None = 10
    per_account_daily: int | None = None
    requests_per_second: float | None = 20.0


DEFAULT_RULES: Mapping[str, LimitRules] = {
    "veesing:sms": LimitRules(),
}
"""The documented rules by product. The documents name the one-per-minute rule and that daily
caps exist (their error messages), not the caps' sizes: 10 per number is the vendors' usual
default, and the account cap is off until HERALD_LIMITS sets the contract's figure."""


def rules_for(scope: str, overrides: Mapping[str, Mapping[str, Any]]) -> LimitRules:
    """The product's default rules with the operator's overrides laid over them."""
    base = DEFAULT_RULES.get(scope, LimitRules())
    return replace(base, **overrides.get(scope, {}))


@dataclass(frozen=True)
class Hold:
    """A number that may not go now, why, and when it may."""

    phone: str
    reason: HoldReason
    until: datetime


@dataclass(frozen=True)
class Reservation:
    scope: str
    day: str
    token: str
    granted: list[str]
    held: list[Hold]


@dataclass(frozen=True)
class DayCounts:
    """What the store knows was sent today: the seed of a day's counters."""

    per_number: Mapping[str, int] = field(default_factory=dict)
    last_sent: Mapping[str, datetime] = field(default_factory=dict)

    @property
    def account(self) -> int:
        return sum(self.per_number.values())


class DaySeed(Protocol):
    """Counts of submissions for `scope` from `day_start` (vendor midnight) until now."""

    def __call__(self, scope: str, day_start: datetime) -> DayCounts: ...


class ScriptRunner(Protocol):
    """The slice of redis-py's client this module uses (so tests may pass their own)."""

    def register_script(self, script: str) -> Callable[..., Any]: ...


# KEYS: [1] seed marker, [2] account day counter, then for each number i:
#       [2+2i-1] minute key, [2+2i] number day counter
# ARGV: [1] minute_ms, [2] number cap (-1 = none), [3] account cap (-1 = none),
#       [4] day counter TTL s, [5] reservation token
# Returns -1 when the day is not seeded; else one entry per number:
#       0 granted, or {1, pttl_ms} minute, or {2} number day cap, or {3} account day cap.
RESERVE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local minute_ms, number_cap, account_cap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, token = tonumber(ARGV[4]), ARGV[5]
local account = tonumber(redis.call('GET', KEYS[2]) or '0')
local out = {}
for i = 3, #KEYS, 2 do
  local minute_key, day_key = KEYS[i], KEYS[i + 1]
  local pttl = redis.call('PTTL', minute_key)
  if pttl > 0 or pttl == -1 then
    table.insert(out, {1, pttl})
  elseif number_cap >= 0 and tonumber(redis.call('GET', day_key) or '0') >= number_cap then
    table.insert(out, {2})
  elseif account_cap >= 0 and account >= account_cap then
    table.insert(out, {3})
  else
    redis.call('SET', minute_key, token, 'PX', minute_ms)
    redis.call('INCR', day_key)
    redis.call('EXPIRE', day_key, ttl)
    account = account + 1
    table.insert(out, 0)
  end
end
redis.call('SET', KEYS[2], account, 'EX', ttl)
return out
"""

# KEYS: [1] account day counter, then for each number i: [2i] minute key, [2i+1] day counter
# ARGV: [1] reservation token
# Gives back what `reserve` took for numbers the vendor provably did not send.
RELEASE_LUA = """
local given_back = 0
for i = 2, #KEYS, 2 do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    if tonumber(redis.call('GET', KEYS[i + 1]) or '0') > 0 then redis.call('DECR', KEYS[i + 1]) end
    given_back = given_back + 1
  end
end
if given_back > 0 then
  local account = tonumber(redis.call('GET', KEYS[1]) or '0')
  local left = math.max(0, account - given_back)
  redis.call('SET', KEYS[1], left, 'KEEPTTL')
end
return given_back
"""

# KEYS: the minute keys of the numbers sent. ARGV: [1] reservation token, [2] minute_ms
# Restarts each number's minute from now, once the vendor has answered: the vendor counts its
# minute from when it received the message, which is after we reserved.
CONFIRM_LUA = """
local restarted = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[2]))
    restarted = restarted + 1
  end
end
return restarted
"""

# KEYS: [1] seed marker, [2] account day counter, then per number: [..] day counter, minute key
# ARGV: [1] day TTL s, [2] account count, then per number: count, minute key PX ms (0 = none)
# Writes the store's counts unless another process seeded the day first.
SEED_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ttl)
for i = 3, #KEYS, 2 do
  local n = (i - 3) / 2
  redis.call('SET', KEYS[i], ARGV[3 + 2 * n], 'EX', ttl)
  local minute_ms = tonumber(ARGV[4 + 2 * n])
  if minute_ms > 0 then redis.call('SET', KEYS[i + 1], 'seed', 'PX', minute_ms) end
end
redis.call('SET', KEYS[1], '1', 'EX', ttl)
return 1
"""

# KEYS: [1] bucket hash. ARGV: [1] rate per s, [2] capacity
# Takes one token; returns 0, or the ms to wait for one. Uses Redis' clock (no host skew).
TOKEN_BUCKET_LUA = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
"""


@dataclass(frozen=True)
class Keys:
    """Every Redis key of one scope, named in one place."""

    scope: str

    def seeded(self, day: str) -> str:
        return f"{LIMIT_KEY_PREFIX}:{self.scope}:{day}:seeded"

    def account(self, day: str) -> str:
        return f"{LIMIT_KEY_PREFIX}:{self.scope}:{day}:account"

    def number_day(self, day: str, phone: str) -> str:
        return f"{LIMIT_KEY_PREFIX}:{self.scope}:{day}:number:{phone}"

    def minute(self, phone: str) -> str:
        return f"{LIMIT_KEY_PREFIX}:{self.scope}:minute:{phone}"

    @property
    def bucket(self) -> str:
        return f"{LIMIT_KEY_PREFIX}:{self.scope}:bucket"


class RateLimiter:
    """The rules of one vendor product, enforced for every worker sharing the Redis."""

    def __init__(
        self,
        redis: ScriptRunner,
        *,
        scope: str,
        rules: LimitRules,
        seed: DaySeed,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.scope = scope
        self.rules = rules
        self._keys = Keys(scope)
        self._seed = seed
        self._clock = clock
        self._reserve = redis.register_script(RESERVE_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._confirm = redis.register_script(CONFIRM_LUA)
        self._seed_day = redis.register_script(SEED_LUA)
        self._bucket = redis.register_script(TOKEN_BUCKET_LUA)

    def reserve(self, phones: Sequence[str]) -> Reservation:
        """Reserve every number that may go now; say when the others may."""
        now = self._clock()
        day = vendor_day(now)
        token = uuid4().hex
        keys = [self._keys.seeded(day), self._keys.account(day)]
        for phone in phones:
            keys += [self._keys.minute(phone), self._keys.number_day(day, phone)]
        args = [
            int(self.rules.minute_s * 1000),
            _cap(self.rules.per_number_daily),
            _cap(self.rules.per_account_daily),
            DAY_KEY_TTL_S,
            token,
        ]
        answer = self._reserve(keys=keys, args=args)
        if answer == -1:
            self.seed_day(now)
            answer = self._reserve(keys=keys, args=args)
        granted: list[str] = []
        held: list[Hold] = []
        midnight = next_vendor_midnight(now)
        for phone, verdict in zip(phones, answer, strict=True):
            if verdict == 0:
                granted.append(phone)
            elif verdict[0] == 1:
                wait_ms = verdict[1] if verdict[1] > 0 else self.rules.minute_s * 1000
                held.append(Hold(phone, "minute", now + timedelta(milliseconds=wait_ms)))
            elif verdict[0] == 2:
                held.append(Hold(phone, "number_day", midnight))
            else:
                held.append(Hold(phone, "account_day", midnight))
        return Reservation(self.scope, day, token, granted, held)

    def release(self, reservation: Reservation, phones: Sequence[str]) -> int:
        """Give back the reservation of numbers the vendor provably did not send."""
        keys = [self._keys.account(reservation.day)]
        for phone in phones:
            keys += [self._keys.minute(phone), self._keys.number_day(reservation.day, phone)]
        return int(self._release(keys=keys, args=[reservation.token]))

    def confirm(self, reservation: Reservation, phones: Sequence[str]) -> int:
        """The vendor answered (or may have taken the numbers): their minute starts now."""
        keys = [self._keys.minute(phone) for phone in phones]
        return int(
            self._confirm(keys=keys, args=[reservation.token, int(self.rules.minute_s * 1000)])
        )

    def seed_day(self, now: datetime) -> bool:
        """Write the store's counts of today into Redis, unless the day is seeded already."""
        day = vendor_day(now)
        counts = self._seed(self.scope, vendor_day_start(now))
        keys = [self._keys.seeded(day), self._keys.account(day)]
        args: list[int] = [DAY_KEY_TTL_S, counts.account]
        for phone, sent in counts.per_number.items():
            keys += [self._keys.number_day(day, phone), self._keys.minute(phone)]
            last = counts.last_sent.get(phone)
            left_ms = 0
            if last is not None:
                left_ms = int(
                    (last + timedelta(seconds=self.rules.minute_s) - now)
                    / timedelta(milliseconds=1)
                )
            args += [sent, max(0, left_ms)]
        return bool(self._seed_day(keys=keys, args=args))

    def acquire_request(self) -> float:
        """Take one request slot; 0 when the call may go now, else seconds to wait."""
        rate = self.rules.requests_per_second
        if rate is None:
            return 0.0
        wait_ms = self._bucket(keys=[self._keys.bucket], args=[rate, max(1.0, rate)])
        return float(wait_ms) / 1000


def _cap(value: int | None) -> int:
    return -1 if value is None else value
