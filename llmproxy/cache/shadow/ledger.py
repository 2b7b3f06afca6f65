"""The audit ledger in Redis, shared by every worker and proxy on the same Redis: each model's tally of audited L2
hits, its effective threshold, and the spending caps of the audit calls (per minute, per UTC day).

    {prefix}:l2audit:models           SET of audited models
    {prefix}:l2audit:model:{model}    HASH agree, disagree, error, epoch, epoch_agree, epoch_disagree, threshold
    {prefix}:l2audit:calls:{minute}   audit calls started in that minute (expires)
    {prefix}:l2audit:usd:{day}        estimated dollars spent that UTC day (expires)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Literal

from redis.asyncio import Redis

from llmproxy.cache.shadow.estimate import Tally
from llmproxy.store.errors import redis_call
from llmproxy.store.hash_tags import hash_tag
from llmproxy.store.search_results import as_text

Outcome = Literal["agree", "disagree", "error"]

# Compare-and-set: only the worker that read the current epoch moves the threshold; the epoch counts restart.
_CHANGE_THRESHOLD = """
if (redis.call('HGET', KEYS[1], 'epoch') or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'threshold', ARGV[2], 'epoch', tonumber(ARGV[1]) + 1, 'epoch_agree', 0,
  'epoch_disagree', 0)
return 1
"""
_MINUTE_KEY_TTL_S = 120
_DAY_KEY_TTL_S = 2 * 86_400


class AuditLedger:
    """Tallies audits per model, moves effective thresholds, and caps the audit calls; keeps a local copy of the
    effective thresholds, which the request path reads without asking Redis."""

    def __init__(
        self, redis: Redis, key_prefix: str, clock: Callable[[], float] = time.time, *, hash_tags: bool = False
    ) -> None:
        self._redis = redis
        # On a cluster one tag keeps the ledger's keys in one slot: a tally's MULTI touches two of them.
        self._prefix = hash_tag(f"{key_prefix}:l2audit") if hash_tags else f"{key_prefix}:l2audit"
        self._clock = clock
        self._change = redis.register_script(_CHANGE_THRESHOLD)
        self._effective: dict[str, float] = {}

    def effective_threshold(self, model: str) -> float | None:
        """The model's tightened threshold as last seen (no Redis call); None: the configured one holds."""
        return self._effective.get(model)

    async def record(self, model: str, outcome: Outcome) -> Tally:
        """Count one audit and return the model's tally after it.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        key = self._model_key(model)
        with redis_call("audit tally"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.sadd(f"{self._prefix}:models", model)
                pipe.hincrby(key, outcome, 1)
                if outcome != "error":
                    pipe.hincrby(key, f"epoch_{outcome}", 1)
                pipe.hgetall(key)
                replies = await pipe.execute()
        return self._remember(model, _tally(replies[-1]))

    async def change_threshold(self, model: str, seen: Tally, threshold: float) -> bool:
        """Set the model's effective threshold unless another worker changed it since `seen` was read.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("audit threshold change"):
            changed = await self._change(keys=[self._model_key(model)], args=[seen.epoch, repr(threshold)])
        if changed:
            self._effective[model] = threshold
        return bool(changed)

    async def tallies(self) -> dict[str, Tally]:
        """Every audited model's tally (and refresh the local thresholds from them).

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("audit tallies"):
            models = sorted(as_text(model) for model in await self._redis.smembers(f"{self._prefix}:models"))
            async with self._redis.pipeline(transaction=False) as pipe:
                for model in models:
                    pipe.hgetall(self._model_key(model))
                replies = await pipe.execute()
        return {model: self._remember(model, _tally(reply)) for model, reply in zip(models, replies, strict=True)}

    async def reserve_call(self, per_minute: int) -> bool:
        """Count one audit call against this minute's cap; False (and not counted as made) when it is reached.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        key = f"{self._prefix}:calls:{int(self._clock() // 60)}"
        with redis_call("audit call cap"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, _MINUTE_KEY_TTL_S)
                made, _ = await pipe.execute()
        return int(made) <= per_minute

    async def spent_today(self) -> float:
        """Estimated dollars spent on audit calls this UTC day.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        with redis_call("audit spending"):
            spent = await self._redis.get(self._day_key())
        return 0.0 if spent is None else float(as_text(spent))

    async def spend(self, dollars: float) -> None:
        """Add an audit call's estimated cost to today's spending.

        Raises:
            CacheUnavailableError: Redis failed or timed out.
        """
        if dollars <= 0:
            return
        key = self._day_key()
        with redis_call("audit spending"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, dollars)
                pipe.expire(key, _DAY_KEY_TTL_S)
                await pipe.execute()

    def _remember(self, model: str, tally: Tally) -> Tally:
        if tally.threshold is None:
            self._effective.pop(model, None)
        else:
            self._effective[model] = tally.threshold
        return tally

    def _model_key(self, model: str) -> str:
        return f"{self._prefix}:model:{model}"

    def _day_key(self) -> str:
        return f"{self._prefix}:usd:{time.strftime('%Y-%m-%d', time.gmtime(self._clock()))}"


def _tally(fields: Mapping[bytes | str, bytes | str]) -> Tally:
    values = {as_text(name): as_text(value) for name, value in fields.items()}

    def count(name: str) -> int:
        return int(values.get(name, "0"))

    threshold = values.get("threshold")
    return Tally(
        agree=count("agree"),
        disagree=count("disagree"),
        errors=count("error"),
        epoch=count("epoch"),
        epoch_agree=count("epoch_agree"),
        epoch_disagree=count("epoch_disagree"),
        threshold=None if threshold is None else float(threshold),
    )
