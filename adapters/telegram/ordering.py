"""One update at a time per chat, in arrival order; different chats at the same time.

`ChatQueues.submit(chat, job)` queues `job` behind the jobs already queued for `chat` and
returns a future that is done when the job has finished (successfully or not: a job's
exception is logged by type only and never stops the chat's later jobs). A chat's worker
task exists only while the chat has queued jobs, so memory follows the active chats.

At most `concurrency` jobs run at once, chats taking turns in the order they became ready:
the HTTP client's connection pool gets slower with every request queued in it (httpcore
scans its whole queue per connection event), so waiting is cheaper here than there.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class ChatQueues:
    __slots__ = ("_queues", "_slots", "_tasks")

    def __init__(self, concurrency: int = 32) -> None:
        self._queues: dict[Hashable, deque[tuple[Job, asyncio.Future[None]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)

    def submit(self, chat: Hashable, job: Job) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._queues.get(chat)
        if queue is None:
            queue = self._queues[chat] = deque()
            task = asyncio.create_task(self._drain(chat, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.append((job, future))
        return future

    @property
    def busy(self) -> int:
        """Jobs queued or running."""
        return sum(len(q) for q in self._queues.values())

    async def _drain(self, chat: Hashable, queue: deque[tuple[Job, asyncio.Future[None]]]) -> None:
        try:
            while queue:
                job, future = queue[0]
                try:
                    async with self._slots:
                        await job()
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    log.error("handling an update failed: %s", type(err).__name__)
                finally:
                    queue.popleft()
                    if not future.done():
                        future.set_result(None)
        finally:
            for _, future in queue:
                future.cancel()
            queue.clear()
            del self._queues[chat]

    async def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued job has run; False if `timeout` passed first."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - asyncio.get_running_loop().time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
