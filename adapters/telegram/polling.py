"""Long polling that acknowledges an update only after it was handled.

python-telegram-bot's own `Updater` confirms a batch of updates as soon as it fetched it
(the next getUpdates carries the higher offset before the handlers ran), and it parses a
whole batch at once: one update it cannot parse makes it fetch the same batch again and
again, blocking every later update. So the adapter drives getUpdates itself:

- each call returns the raw JSON dicts (`bot.do_api_request("getUpdates", ...,
  return_type=None)`, the public way to make a raw call since PTB 20.8), and each update is
  parsed on its own by the channel: a malformed one is skipped with its update_id logged,
  and the ones after it are handled;
- updates are handed to `dispatch(raw)`, which starts their handling (one at a time per
  chat, chats concurrently) and returns a future done when it finished;
- the offset sent to Telegram is the first update whose handling has not finished: an
  update is confirmed only once it and every update before it were handled (a sliding
  window of at most `limit` updates). After a crash Telegram hands out again the updates
  not yet confirmed; some of them may have been handled already (the trust work dedupes
  them by update_id).
- while updates are being handled, Telegram answers getUpdates at once, and with every
  update not confirmed yet: a call brings back the (up to `limit`) updates in flight, and
  only as many new ones as fit beside them (the answer starts at the offset, so a smaller
  `limit` would cut off new ones, not old). Reading updates again is work for nothing:
  asked after every finished update, under a burst each call brought ~100 updates back
  for one or two new ones (~13 % of the bot's CPU). So after dispatching, the poller asks
  again only
  * once an update has finished (the call confirms it): no busy loop, and about two
    getUpdates per update when traffic is light;
  * and once the handlers run short of work: no more than twice `workers` (the channel's
    concurrency; at most half of `limit`) updates left to handle. The call then brings
    at least as many new updates as old ones, and the handlers are busy while it is
    under way;
  * or after `busy_interval`, so that a slow update does not hold up the ones arriving
    meanwhile;
  * but never while `limit` updates are in flight: no call could bring anything new.
  With nothing in flight it long-polls.
- network errors, 5xx, 429 and 409 (another poller or a webhook) are retried with
  exponential back-off; the loop stops only when asked to.

On `stop()` the poll is cancelled, in-flight handling is awaited (the channel does that),
and `acknowledge()` tells Telegram about the last handled updates with a short call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from telegram.error import Conflict, InvalidToken, RetryAfter, TelegramError
from telegram.ext import ExtBot
from telegram.warnings import PTBUserWarning

log = logging.getLogger(__name__)

Dispatch = Callable[[Mapping[str, Any]], "asyncio.Future[None]"]


class Poller:
    """Fetches updates and acknowledges each once handled (see the module docstring)."""

    def __init__(
        self,
        bot: ExtBot[Any],
        dispatch: Dispatch,
        *,
        allowed_updates: tuple[str, ...],
        timeout: int = 30,
        limit: int = 100,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        read_timeout: float = 10.0,
        busy_interval: float = 0.25,
        workers: int = 16,
    ) -> None:
        self.bot = bot
        self.dispatch = dispatch
        self.allowed_updates = list(allowed_updates)
        self.timeout = timeout
        self.limit = limit
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.read_timeout = read_timeout
        self.busy_interval = busy_interval
        # Ask again once no more than this many updates are left to handle (at least as
        # many new as old ones then come back, and the handlers have work meanwhile).
        self._low_water = min(2 * workers, limit // 2)
        self._highest: int | None = None  # the highest update_id dispatched
        self._window: deque[int] = deque()  # dispatched, not confirmable yet, in order
        self._finished: set[int] = set()  # finished, but behind an unfinished one
        self._task: asyncio.Task[None] | None = None
        self._sent_offset: int | None = None
        # Pacing (see the module docstring): set by `_finish` and the busy_interval timer.
        self._wake: asyncio.Future[None] | None = None
        self._progressed = False  # an update finished since the last call started
        self._late = False  # busy_interval passed since the last call started
        self.fetches = 0  # getUpdates calls
        self.received = 0  # updates they brought
        self.repeated = 0  # ... that were being handled already (brought back again)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        # do_api_request advises get_updates, which parses a whole batch at once: we call
        # it raw on purpose (see above). Idempotent; set here rather than at import so
        # that it holds whoever reset the filters in between (pytest does, per test).
        warnings.filterwarnings(
            "ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning
        )
        self._task = asyncio.create_task(self._run(), name="telegram-polling")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception as err:  # pragma: no cover - _run handles its errors
                log.error("the polling loop ended with %s", type(err).__name__)
            self._task = None
            log.info(
                "polling stopped: %d getUpdates brought %d updates, %d of them again",
                self.fetches,
                self.received,
                self.repeated,
            )

    @property
    def offset(self) -> int | None:
        """The offset that confirms exactly the updates handled so far."""
        if self._window:
            return self._window[0]
        return None if self._highest is None else self._highest + 1

    @property
    def in_flight(self) -> int:
        return len(self._window)

    async def acknowledge(self) -> None:
        """Confirm the handled updates to Telegram now (used on shutdown)."""
        offset = self.offset
        if offset is None or offset == self._sent_offset:
            return
        try:
            await self._fetch(offset, timeout=0, limit=1)
        except (TelegramError, OSError) as err:
            log.warning("could not confirm the last updates (%s)", type(err).__name__)

    # ------------------------------------------------------------------ the loop

    async def _fetch(self, offset: int | None, timeout: int, limit: int) -> list[Any]:
        kwargs: dict[str, Any] = {
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": self.allowed_updates,
        }
        if offset is not None:
            kwargs["offset"] = offset
        result = await self.bot.do_api_request(
            "getUpdates",
            api_kwargs=kwargs,
            return_type=None,
            # The long poll may last `timeout` seconds before any byte comes back.
            read_timeout=self.read_timeout + timeout,
        )
        self._sent_offset = offset
        self.fetches += 1
        return result if isinstance(result, list) else []

    async def _run(self) -> None:
        delay = self.backoff_initial
        while True:
            self._progressed = self._late = False
            busy = bool(self._window)
            try:
                raws = await self._fetch(self.offset, 0 if busy else self.timeout, self.limit)
            except RetryAfter as err:
                wait = retry_seconds(err)
                log.warning("getUpdates: flood control, waiting %.0fs", wait)
                await asyncio.sleep(wait)
                continue
            except Exception as err:  # the loop must outlive any failure; it stops when cancelled
                wait = min(delay, self.backoff_max) * random.uniform(0.8, 1.2)  # noqa: S311
                level = (
                    logging.ERROR if isinstance(err, Conflict | InvalidToken) else logging.WARNING
                )
                log.log(
                    level,
                    "getUpdates failed (%s: %s); retrying in %.1fs",
                    type(err).__name__,
                    _why(err),
                    wait,
                )
                await asyncio.sleep(wait)
                delay *= 2
                continue
            delay = self.backoff_initial
            self._take(raws)
            if self._window:
                await self._pace()

    async def _pace(self) -> None:
        """Return when the next getUpdates is worth making (see the module docstring)."""
        if self._progressed and self._worth_fetching():
            return
        loop = asyncio.get_running_loop()
        self._wake = loop.create_future()
        timer = loop.call_later(self.busy_interval, self._busy_interval_passed)
        try:
            await self._wake
        finally:
            timer.cancel()
            self._wake = None

    def _worth_fetching(self) -> bool:
        """Whether a call now would bring enough that is new; the caller checks that an
        update finished since the last call started. Run on every finished update: cheap."""
        in_flight = len(self._window)
        if not in_flight:
            return True  # nothing would come back: the call long-polls
        if in_flight >= self.limit:
            return False  # it would bring back only the updates being handled
        return self._late or in_flight - len(self._finished) <= self._low_water

    def _busy_interval_passed(self) -> None:
        self._late = True
        self._wake_if_worth()

    def _wake_if_worth(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done() and self._worth_fetching():
            wake.set_result(None)

    def _take(self, raws: list[Any]) -> None:
        """Dispatch the updates not dispatched yet."""
        self.received += len(raws)
        for raw in raws:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                log.warning("skipping an update without a valid update_id")
                continue
            if self._highest is not None and update_id <= self._highest:
                self.repeated += 1
                continue  # dispatched already, still in flight
            self._highest = update_id
            self._window.append(update_id)
            future = self.dispatch(raw)
            future.add_done_callback(lambda _, uid=update_id: self._finish(uid))

    def _finish(self, update_id: int) -> None:
        self._finished.add(update_id)
        window = self._window
        while window and window[0] in self._finished:
            self._finished.discard(window.popleft())
        self._progressed = True
        self._wake_if_worth()


def retry_seconds(err: RetryAfter) -> float:
    """RetryAfter's wait in seconds (PTB 22 deprecates reading it as an int)."""
    value = getattr(err, "_retry_after", None)
    if value is None:  # pragma: no cover - older PTB
        value = err.retry_after
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _why(err: BaseException) -> str:
    """A Telegram error's own description (never a URL, so never the token)."""
    if isinstance(err, TelegramError):
        return err.message[:200]
    return "-"
