"""One logical upstream request as a series of attempts: breaker admission, a deadline, retries with backoff.

The final response comes back with its headers read and its body unread, so `send` can read it whole and
`open` can stream it. Nothing has reached the client before that, which is what makes a retry safe.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import anyio

from llmproxy.breaker import BreakerState, CircuitBreaker, CircuitOpenError, Ticket
from llmproxy.errors import UpstreamError, UpstreamUnavailableError
from llmproxy.settings import UpstreamSettings
from llmproxy.upstream.failures import TRANSPORT_ERRORS, is_retryable, timeout_error, upstream_error
from llmproxy.upstream.retry import Failure, RetryPolicy, retry_delay
from llmproxy.upstream.session import close

logger = logging.getLogger(__name__)

# One attempt: sends the request anew and returns the response once its headers arrived.
RequestFactory = Callable[[], Awaitable[aiohttp.ClientResponse]]


def _ignore(value: object) -> None:
    pass


@dataclass(frozen=True, slots=True)
class UpstreamHooks:
    """How a client reports to telemetry, which sits beside the upstream package and is not imported by it."""

    retried: Callable[[str], None] = _ignore  # a retry, by reason: "connection", "429", "502", "503" or "529"
    breaker_changed: Callable[[BreakerState], None] = _ignore


@dataclass(frozen=True, slots=True)
class Answer:
    """The response the request ends with; its body is unread, and the caller closes it."""

    response: aiohttp.ClientResponse
    attempts: int
    deadline: float  # time.monotonic() by which a non-streamed body must be read

    def remaining_s(self) -> float:
        """Seconds left before the deadline."""
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True, slots=True)
class _Tried:
    """One attempt: a response, or the error to raise; `failure` is set when a retry could help."""

    response: aiohttp.ClientResponse | None
    error: UpstreamError | None
    failure: Failure | None

    @property
    def upstream_failed(self) -> bool:
        """The upstream is unwell (as far as the breaker is concerned): no answer, a 5xx or a 429."""
        status = self.response.status if self.response is not None else None
        return status is None or status >= 500 or status == 429


class Attempts:
    """Sends requests of one upstream through its circuit breaker, retrying where that is safe."""

    def __init__(self, settings: UpstreamSettings, origin: str, hooks: UpstreamHooks) -> None:
        self._origin = origin
        self._policy = RetryPolicy.from_settings(settings)
        self._total_s = settings.total_timeout_s
        self._hooks = hooks
        self.breaker = CircuitBreaker(
            settings.breaker_failure_threshold, settings.breaker_reset_s, time.monotonic, hooks.breaker_changed
        )

    async def answer(self, build: RequestFactory, *, replayable: bool) -> Answer:
        """The last response of up to 1 + max_retries attempts (one when the body cannot be sent again).

        Raises:
            UpstreamUnavailableError: the circuit breaker is open; the upstream was not called.
            UpstreamError: the upstream could not be reached, even after retries.
            UpstreamTimeoutError: no response headers before the deadline (total_timeout_s).
        """
        ticket = self._admit()
        deadline = time.monotonic() + self._total_s
        try:
            tried, attempts = await self._attempt_until_final(build, ticket, deadline, replayable)
        except BaseException:
            self.breaker.release(ticket)  # cancelled (the caller left): no verdict on the upstream
            raise
        self.breaker.record(ticket, success=not tried.upstream_failed)
        if tried.error is not None:
            raise tried.error
        assert tried.response is not None
        return Answer(tried.response, attempts, deadline)

    def _admit(self) -> Ticket:
        try:
            return self.breaker.admit()
        except CircuitOpenError as exc:
            message = f"The upstream API at {self._origin} is failing; the proxy is not calling it for now."
            raise UpstreamUnavailableError(message, retry_after_s=exc.retry_after_s) from exc

    async def _attempt_until_final(
        self, build: RequestFactory, ticket: Ticket, deadline: float, replayable: bool
    ) -> tuple[_Tried, int]:
        attempts = 1
        while True:
            tried = await self._attempt(build, deadline)
            delay = self._delay(tried.failure, attempts - 1, ticket, deadline) if replayable else None
            if delay is None:
                return tried, attempts
            if tried.response is not None:
                await close(tried.response)
            assert tried.failure is not None
            logger.info("retrying %s in %.2f s after %s", self._origin, delay, tried.failure.reason)
            self._hooks.retried(tried.failure.reason)
            await anyio.sleep(delay)
            attempts += 1

    async def _attempt(self, send: RequestFactory, deadline: float) -> _Tried:
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):  # cheaper than anyio.fail_after
                response = await send()
        # Before TimeoutError: aiohttp's socket timeouts are TimeoutErrors too, and have their own answer.
        except TRANSPORT_ERRORS as exc:
            failure = Failure(None) if is_retryable(exc) else None
            return _Tried(None, upstream_error(exc, self._origin), failure)
        except TimeoutError:
            return _Tried(None, timeout_error(self._origin), None)
        headers = response.headers
        status = response.status
        failure = Failure(status, headers.get("retry-after"), headers.get("retry-after-ms")) if status >= 400 else None
        return _Tried(response, None, failure)

    def _delay(self, failure: Failure | None, retries_done: int, ticket: Ticket, deadline: float) -> float | None:
        # The half-open trial is one request, and once the breaker opened a retry would only add load.
        if failure is None or ticket.trial or not self.breaker.is_current(ticket):
            return None
        delay = retry_delay(self._policy, retries_done, failure, time.time())
        # A wait that outlasts the deadline would only turn this answer into a 504.
        if delay is None or time.monotonic() + delay >= deadline:
            return None
        return delay
