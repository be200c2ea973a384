"""Sessions in a dict: for tests, transcript replay and the console chat."""

from __future__ import annotations

from engine.conversation import Session
from engine.stores.base import SessionStore


class MemoryStore(SessionStore):
    """Sessions kept as they are. `load` hands out the stored object itself: the engine never
    mutates the session it is given (it works on its own copy), so no second copy is made
    on this hot path. A caller that wants to change a loaded session copies it first."""

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def load(self, key: str) -> Session | None:
        return self._sessions.get(key)

    def save(self, session: Session) -> None:
        # The engine hands back a fresh Session on every event and never touches it again,
        # so storing it as it is keeps this path free of copies.
        self._sessions[session.key] = session

    def delete(self, key: str) -> None:
        self._sessions.pop(key, None)

    def purge_idle(self, older_than: float) -> int:
        stale = [key for key, s in self._sessions.items() if s.updated < older_than]
        for key in stale:
            del self._sessions[key]
        return len(stale)

    def count(self) -> int:
        return len(self._sessions)
