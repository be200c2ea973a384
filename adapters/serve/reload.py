"""Hot reload: the serving bot picks up changed flows without a restart.

A `FlowReloader` looks at the flows folder every `poll` seconds (the flow files, bot.yaml
and the Word templates anywhere below it) and also reloads on SIGHUP. On a change it waits
until the folder has been still for `settle` seconds (an editor, `git pull` or `rsync`
writes several files, some in several steps), then loads and checks the whole folder in a
worker thread:

- the check fails: every error is logged with its FILE:LINE:COL, and the bot keeps
  serving the flows it had;
- the check passes: a new `Engine` is built (in the worker thread too: its state machines
  take a moment) and swapped into the hub between two events, and every channel is told
  (`Channel.bind`). Conversations whose step still exists carry on; the others get a
  polite restart on their next message (see `Engine.take_over` and `_Turn.begin`).

Why polling and not file-system events (inotify, `watchfiles`): a flows folder is a few
dozen files, so looking at each every two seconds costs next to nothing, needs no extra
dependency, and works where events do not arrive (network shares, some container bind
mounts, a folder replaced by a symlink swap).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from adapters.serve.channel import Channel
from adapters.serve.heap import give_back_memory
from adapters.serve.hub import Hub
from engine.loader import load_folder
from engine.model import FlowSet
from engine.privacy import SessionKeys
from engine.runtime import Engine

log = logging.getLogger("hotline.serve.reload")

WATCHED_SUFFIXES = (".yaml", ".yml", ".docx")
POLL_SECONDS = 2.0
SETTLE_SECONDS = 1.0
# A folder that keeps changing (a long copy) is reloaded after this long anyway; the check
# refuses it if it is still half-written, and the next change brings another try.
MAX_SETTLE_SECONDS = 30.0

# file (relative to the flows folder) -> (modification time in ns, size, inode)
Stamps = dict[str, tuple[int, int, int]]


def folder_stamps(folder: Path) -> Stamps:
    """What the flows folder looks like now, cheaply: a stat of every file that a load
    reads. Hidden files and folders (.git, editors' swap files) and Word's lock files
    (~$name.docx, made when a lawyer merely opens a template) are left out."""
    stamps: Stamps = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith((".", "~$")) or not name.endswith(WATCHED_SUFFIXES):
                continue
            path = os.path.join(root, name)
            try:
                st = os.stat(path)
            except OSError:
                continue  # deleted between the listing and the stat: the next look sees it
            stamps[os.path.relpath(path, folder)] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return stamps


class FlowReloader:
    """Reloads `flows_dir` into `hub` when it changes (and on SIGHUP).

    `keys` are the session keys the running engine was built with: the new engine must
    store sessions under the same keys, or every conversation would start afresh.
    `poll` and `settle` are in seconds. `watch=False` reloads on SIGHUP (and
    `reload_now`) only, for organisations that publish flows deliberately; `signals=False`
    leaves SIGHUP alone (tests, or a bot run outside the main thread)."""

    def __init__(
        self,
        flows_dir: str | Path,
        keys: SessionKeys | None,
        hub: Hub,
        channels: Mapping[str, Channel],
        *,
        poll: float = POLL_SECONDS,
        settle: float = SETTLE_SECONDS,
        watch: bool = True,
        signals: bool = True,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.keys = keys
        self.hub = hub
        self.channels = dict(channels)
        self.poll = poll
        self.settle = settle
        self.watch = watch
        self.signals = signals
        self.reloads = 0  # successful reloads, for tests and metrics
        self._lock = asyncio.Lock()  # one reload at a time: SIGHUP and a change may coincide
        self._wake = asyncio.Event()  # set by SIGHUP
        self._task: asyncio.Task[None] | None = None
        self._signal_set = False

    async def start(self) -> None:
        """Begin watching (and listening for SIGHUP); returns at once."""
        if self._task is not None:
            return
        known = await asyncio.to_thread(folder_stamps, self.flows_dir) if self.watch else {}
        self._task = asyncio.create_task(self._watch(known), name="flows-reloader")
        hup = getattr(signal, "SIGHUP", None)
        if self.signals and hup is not None:
            try:
                asyncio.get_running_loop().add_signal_handler(hup, self._wake.set)
                self._signal_set = True
            except (NotImplementedError, RuntimeError, ValueError):
                # Windows, or not the main thread: the file watch and reload_now still work.
                log.debug("SIGHUP cannot be handled here; it will not reload the flows")

    async def stop(self) -> None:
        if self._signal_set:
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            self._signal_set = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reload_now(self) -> bool:
        """Load and check the folder; swap it in if it passes. True when swapped in."""
        async with self._lock:
            return await self._reload()

    # ------------------------------------------------------------------ internals

    async def _reload(self) -> bool:
        folder = self.flows_dir
        try:
            flows, report = await asyncio.to_thread(load_folder, folder)
        except Exception:  # a bug in the loader must not take the running bot down
            log.exception(
                "flows not reloaded: loading %s failed; keeping the current flows", folder
            )
            return False
        if flows is None:
            errors = sorted(report.errors, key=lambda d: (d.file, d.position))
            # Diagnostics are about the authored files (FILE:LINE:COL: what is wrong),
            # never about what anybody wrote to the bot.
            for diagnostic in errors:
                log.error("%s", diagnostic)
            log.error(
                "flows not reloaded: %d error(s) in %s; keeping the current flows "
                "(run `hotline check %s`)",
                len(errors),
                folder,
                folder,
            )
            return False
        try:
            engine = await asyncio.to_thread(self._make_engine, flows)
        except Exception:
            log.exception("flows not reloaded: the engine could not be built; keeping the current")
            return False
        self._swap(engine, flows)
        return True

    def _make_engine(self, flows: FlowSet) -> Engine:
        # A new engine also means a new template renderer: no template is served from an
        # older folder's cache.
        return Engine(flows, keys=self.keys)

    def _swap(self, engine: Engine, flows: FlowSet) -> None:
        """Put `engine` in the hub. No await in here: the hub runs each event through the
        engine synchronously on this event loop, so every event sees either the old engine
        or the new one, whole, and `take_over` marks the changed buttons at the moment the
        last event of the old engine is behind us."""
        engine.take_over(self.hub.engine, time.time())
        self.hub.engine = engine
        for channel in self.channels.values():
            try:
                channel.bind(flows)
            except Exception:
                log.exception("channel %s could not take the reloaded flows", channel.name)
        if self.hub.desk is not None:
            self.hub.desk.bind(flows)  # the desk's texts: bot.yaml may have reworded them
        self.reloads += 1
        log.info("flows reloaded: %d flows", len(flows.flows))
        give_back_memory()  # the old engine and the template check's leftovers

    async def _watch(self, known: Stamps) -> None:
        while True:
            try:
                asked = await self._next_round()
                if self.watch:
                    now = await asyncio.to_thread(folder_stamps, self.flows_dir)
                    if now == known and not asked:
                        continue
                    if now != known:
                        now = await self._settled(now)
                    # Remembered before the reload: a folder that fails the check is not
                    # retried until it changes again (or another SIGHUP).
                    known = now
                if asked:
                    log.info("SIGHUP: reloading the flows")
                await self.reload_now()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep watching whatever happened to one round
                log.exception("the flows watch failed a round; watching on")

    async def _next_round(self) -> bool:
        """Wait for SIGHUP or, when watching, for the next look; True for SIGHUP."""
        if self.watch:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll)
        else:
            await self._wake.wait()
        asked = self._wake.is_set()
        self._wake.clear()
        return asked

    async def _settled(self, stamps: Stamps) -> Stamps:
        """Wait until the folder has not changed for `settle` seconds; its stamps then."""
        deadline = time.monotonic() + MAX_SETTLE_SECONDS
        while time.monotonic() < deadline:
            await asyncio.sleep(self.settle)
            again = await asyncio.to_thread(folder_stamps, self.flows_dir)
            if again == stamps:
                break
            stamps = again
        return stamps
