"""Shadow verification: a share of L2 hits is asked upstream again after the cached answer was served, and the
fresh answer is compared with the served one, which measures L2 precision on live traffic.

Off the request path: a served hit only offers a job to a bounded queue (a full queue drops it, counted), which
workers the lifespan owns drain. The job holds the caller's request, credentials included, in memory only, for
the one audit call; nothing of it is stored or logged. Calls are capped per minute and per UTC day in dollars,
across workers (the ledger in Redis). A disagreement replaces the request's promoted L1 copy with the fresh answer
(so the same prompt is not served the wrong answer again) and is written to the audit log; with an error budget
(`semantic.max_error_rate`) the model's effective threshold moves, which is counted and audited too.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import orjson

from llmproxy.cache.catalog.audit import AuditEvent, AuditLog, FilterValue
from llmproxy.cache.catalog.index import entry_id
from llmproxy.cache.entry import CacheEntry
from llmproxy.cache.shadow.comparison import Comparison, Embed, compare, is_deterministic
from llmproxy.cache.shadow.estimate import Budget, Tally, next_threshold
from llmproxy.cache.shadow.ledger import AuditLedger, Outcome
from llmproxy.cache.writeback import StorePlan, WriteBack
from llmproxy.errors import ProxyError
from llmproxy.jsontypes import JsonObject
from llmproxy.proxy.exchange import CacheRequest
from llmproxy.proxy.forwarder import Forwarder
from llmproxy.settings import SemanticSettings
from llmproxy.store.errors import CacheUnavailableError
from llmproxy.telemetry.audit_metrics import AuditMetrics
from llmproxy.telemetry.pricing import PriceList
from llmproxy.trace import TokenUsage

logger = logging.getLogger(__name__)

AUDITOR = "shadow-audit"  # who the audit log names for the events shadow verification writes
WORKERS = 4  # audit calls in flight at once, per process
REFRESH_S = 5.0  # how often the effective thresholds other workers set are read back


@dataclass(frozen=True, slots=True)
class AuditJob:
    """One served L2 hit to verify: the request as the caller sent it, the answer it got, and where it came from."""

    request: CacheRequest
    served: CacheEntry
    entry_key: str  # the L1 key of the cached answer that was served
    key: str  # the request's own L1 key, where the hit was promoted
    upstream: str | None  # the route's upstream and model, as a miss would have used
    model: str | None
    store: StorePlan | None  # where a fresh answer replaces a wrong promoted copy (None: nothing was promoted)


class ShadowAuditor:
    """Picks L2 hits to verify, verifies them in the background, and keeps the ledger and the error budget."""

    def __init__(
        self,
        *,
        settings: SemanticSettings,
        forwarder: Forwarder,
        ledger: AuditLedger,
        write_back: WriteBack,
        audit_log: AuditLog,
        embed: Embed,
        prices: PriceList,
        metrics: AuditMetrics,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self._settings = settings
        self._forwarder = forwarder
        self._ledger = ledger
        self._write_back = write_back
        self._audit_log = audit_log
        self._embed = embed
        self._prices = prices
        self._metrics = metrics
        self._chance = chance
        self._queue: asyncio.Queue[AuditJob] = asyncio.Queue(maxsize=settings.audit_queue_size)
        budget = settings.max_error_rate
        self._budget = None
        if budget is not None:
            step, floor = settings.audit_threshold_step, settings.audit_threshold_floor
            self._budget = Budget(budget, settings.audit_min_samples, step, floor)

    def picks(self) -> bool:
        """Whether this L2 hit is to be verified (a draw against semantic.audit_rate)."""
        return self._chance() < self._settings.audit_rate

    def after_serving(self, job: AuditJob) -> Callable[[], Awaitable[None]]:
        """What the hit's reply runs once it was sent: the job is queued, never waited for."""

        async def offer() -> None:
            try:
                self._queue.put_nowait(job)
            except asyncio.QueueFull:
                self._metrics.skipped.labels("queue_full").inc()

        return offer

    async def run(self) -> None:
        """Drain the queue with a few workers, and read back the thresholds other workers set (the lifespan owns
        and cancels this task)."""
        async with anyio.create_task_group() as workers:
            for _ in range(WORKERS):
                workers.start_soon(self._drain)
            workers.start_soon(self._refresh)

    async def _drain(self) -> None:
        while True:
            job = await self._queue.get()
            model = job.request.parsed.model
            try:
                outcome = await self._audit(job)
            except Exception:  # a failed audit costs its measurement, never the worker
                logger.exception("shadow verification of an L2 hit failed")
                outcome = "error"
            if outcome is not None:
                self._metrics.audited(model, outcome)

    async def _refresh(self) -> None:
        while True:
            try:
                tallies = await self._ledger.tallies()
            except CacheUnavailableError as exc:
                logger.warning("could not read the audit ledger: %s", exc)
            except Exception:  # a bad ledger entry must not stop the refresh (nor the app's task group)
                logger.exception("could not read the audit ledger")
            else:
                for model, tally in tallies.items():
                    self._metrics.set_threshold(model, self._threshold(model, tally))
            await anyio.sleep(REFRESH_S)

    async def _audit(self, job: AuditJob) -> Outcome | None:
        """Verify one hit: the outcome, or None when a cap stopped it (counted as skipped)."""
        model = job.request.parsed.model
        estimate = self._cost(model, job.request, job.served.response)
        if await self._ledger.spent_today() + estimate > self._settings.audit_max_dollars_per_day:
            self._metrics.skipped.labels("dollar_cap").inc()
            return None
        if not await self._ledger.reserve_call(self._settings.audit_max_per_minute):
            self._metrics.skipped.labels("minute_cap").inc()
            return None
        fresh = await self._ask_again(job)
        if fresh is None:
            await self._ledger.spend(estimate)
            await self._ledger.record(model, "error")
            return "error"
        await self._ledger.spend(self._cost(model, job.request, fresh))
        comparison = await self._compare(job, fresh)
        outcome: Outcome = "agree" if comparison.agree else "disagree"
        tally = await self._ledger.record(model, outcome)
        if not comparison.agree:
            await self._disagreed(job, fresh, comparison)
        await self._keep_budget(model, tally)
        return outcome

    async def _ask_again(self, job: AuditJob) -> JsonObject | None:
        """The fresh answer, or None when the upstream failed or did not answer with one."""
        try:
            reply = await self._forwarder.ask_again(job.request, job.upstream, job.model)
        except ProxyError as exc:
            logger.info("shadow verification call failed: %s", exc.message)
            return None
        if reply.status != 200:
            return None
        try:
            answer = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            return None
        protocol = job.request.protocol
        if not isinstance(answer, dict) or protocol.answer_error(answer) is not None:
            return None
        return answer if protocol.is_complete(answer) else None

    async def _compare(self, job: AuditJob, fresh: JsonObject) -> Comparison:
        exact = is_deterministic(job.request.parsed.body)
        agree_at = self._settings.audit_agree_similarity
        comparison = await compare(fresh, job.served.response, exact=exact, embed=self._embed, agree_at=agree_at)
        if not comparison.exact:
            self._metrics.similarity.observe(comparison.similarity)
        return comparison

    async def _disagreed(self, job: AuditJob, fresh: JsonObject, comparison: Comparison) -> None:
        """Replace the wrong promoted copy with the fresh answer, and write the disagreement to the audit log."""
        replaced = job.store is not None and await self._write_back.store(job.store, fresh) == "stored"
        filters: dict[str, FilterValue] = {
            "model": job.request.parsed.model,
            "served_entry": entry_id(job.entry_key),
            "request_entry": entry_id(job.key),
            "similarity": round(comparison.similarity, 4),
            "exact": comparison.exact,
        }
        event = AuditEvent(AUDITOR, "", "l2_disagree", filters, matched=1, deleted=int(replaced), dry_run=False)
        await self._audit_log.record(event)

    async def _keep_budget(self, model: str, tally: Tally) -> None:
        """Tighten (or relax) the model's effective threshold when its error budget says so."""
        if self._budget is None:
            return
        current = self._threshold(model, tally)
        threshold = next_threshold(tally, self._configured(model), self._budget)
        if threshold is None or not await self._ledger.change_threshold(model, tally, threshold):
            return
        self._metrics.set_threshold(model, threshold)
        errors = tally.epoch_disagree / max(1, tally.epoch_agree + tally.epoch_disagree)
        filters: dict[str, FilterValue] = {
            "model": model,
            "from": current,
            "to": threshold,
            "error_rate": round(errors, 4),
        }
        action = "l2_threshold_tightened" if threshold < current else "l2_threshold_relaxed"
        logger.warning(
            "L2 threshold of %s moved from %.3f to %.3f (error rate %.3f)", model, current, threshold, errors
        )
        await self._audit_log.record(AuditEvent(AUDITOR, "", action, filters, matched=0, deleted=0, dry_run=False))

    def _configured(self, model: str) -> float:
        return self._settings.model_thresholds.get(model, self._settings.threshold)

    def _threshold(self, model: str, tally: Tally) -> float:
        """The model's threshold in force: the ledger's only under an error budget (one left from an earlier
        budget is not applied)."""
        if self._budget is None or tally.threshold is None:
            return self._configured(model)
        return tally.threshold

    def _cost(self, model: str, request: CacheRequest, answer: JsonObject) -> float:
        """An audit call's estimated cost: the answer's usage at the model's price (the served answer's before the
        call; nothing for a model without a price)."""
        usage = request.protocol.usage(answer) or TokenUsage()
        return self._prices.cost_usd(model, usage)
