"""Telegram's limits and network failures, around every Bot API call but getUpdates.

`HotlineRateLimiter` is python-telegram-bot's `AIORateLimiter` (about 30 messages a second
overall, 20 a minute per group; a 429 pauses every request for its `retry_after` and the
call is retried up to `max_retries` times) with two additions:

- a limit per private chat (Telegram asks for about one message a second per chat): a
  token bucket of `per_chat_burst` messages refilled at `per_chat_per_second`, so a step's
  two or three messages still leave at once while a long stream is paced;
- network errors (connection refused or dropped, timeouts, 5xx answers) are retried with
  exponential back-off and jitter, up to `network_retries` times. A BadRequest (a 400) is
  never retried: the same request would fail again.

A send that timed out after Telegram received it is sent twice by a retry; the Bot API has
no idempotency key, so this is the price of not losing messages (the trust work's outbox
keeps it to "at least once, in order").
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from typing import Any

from aiolimiter import AsyncLimiter
from telegram.error import BadRequest, NetworkError
from telegram.ext import AIORateLimiter

from adapters.telegram.config import RateLimitConfig

log = logging.getLogger(__name__)

Result = bool | dict[str, Any] | list[dict[str, Any]]
Callback = Callable[..., Coroutine[Any, Any, Result]]
# Calls that put something in a chat, and so count against the per-chat limit.
_CHAT_METHOD_PREFIXES = ("send", "edit", "copy", "forward")
_MAX_CHAT_LIMITERS = 1024


class HotlineRateLimiter(AIORateLimiter):
    __slots__ = (
        "_backoff_initial",
        "_backoff_max",
        "_chat_burst",
        "_chat_limiters",
        "_chat_period",
        "_network_retries",
    )

    def __init__(self, config: RateLimitConfig) -> None:
        super().__init__(
            overall_max_rate=config.overall_per_second,
            overall_time_period=1 if config.overall_per_second else 0,
            group_max_rate=config.group_per_minute,
            group_time_period=60 if config.group_per_minute else 0,
            max_retries=config.max_retries,
        )
        self._chat_burst = config.per_chat_burst
        self._chat_period = (
            config.per_chat_burst / config.per_chat_per_second
            if config.per_chat_per_second
            else 0.0
        )
        self._chat_limiters: dict[int, AsyncLimiter] = {}
        self._network_retries = config.network_retries
        self._backoff_initial = config.backoff_initial
        self._backoff_max = config.backoff_max

    async def process_request(
        self,
        callback: Callback,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Result:
        limiter = self._chat_limiter(endpoint, data)
        if limiter is not None:
            await limiter.acquire()
        return await super().process_request(
            self._retrying(callback, endpoint), args, kwargs, endpoint, data, rate_limit_args
        )

    def _chat_limiter(self, endpoint: str, data: dict[str, Any]) -> AsyncLimiter | None:
        if not self._chat_period or not endpoint.startswith(_CHAT_METHOD_PREFIXES):
            return None
        chat_id = data.get("chat_id")
        if not isinstance(chat_id, int) or chat_id <= 0:
            return None  # groups and channels have the group limit
        limiter = self._chat_limiters.get(chat_id)
        if limiter is None:
            if len(self._chat_limiters) >= _MAX_CHAT_LIMITERS:
                # Forget the chats whose bucket is full again: they have been quiet long enough.
                for key, old in list(self._chat_limiters.items()):
                    if old.has_capacity(old.max_rate):
                        del self._chat_limiters[key]
            limiter = self._chat_limiters[chat_id] = AsyncLimiter(
                self._chat_burst, self._chat_period
            )
        return limiter

    def _retrying(self, callback: Callback, endpoint: str) -> Callback:
        async def call(*args: Any, **kwargs: Any) -> Result:
            delay = self._backoff_initial
            for attempt in range(self._network_retries + 1):
                try:
                    return await callback(*args, **kwargs)
                except BadRequest:
                    raise
                except NetworkError as err:  # TimedOut is a NetworkError too
                    if attempt == self._network_retries:
                        raise
                    wait = min(delay, self._backoff_max) * random.uniform(0.8, 1.2)  # noqa: S311
                    log.warning(
                        "%s failed (%s); retry %d of %d in %.2fs",
                        endpoint,
                        type(err).__name__,
                        attempt + 1,
                        self._network_retries,
                        wait,
                    )
                    await asyncio.sleep(wait)
                    delay *= 2
            raise AssertionError("unreachable")  # pragma: no cover

        return call
