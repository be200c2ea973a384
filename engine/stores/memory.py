"""Sessions in a dict: for tests, transcript replay and the console chat."""

from __future__ import annotations

from engine.conversation import Session
from engine.stores.base import SessionStore


class MemoryStore(SessionStore):
    """Stores copies, so a caller that keeps mutating its Session cannot change the store."""

    __slots__ = ("_sessions",)

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def load(self, key: str) -> Session | None:
        session = self._sessions.get(key)
        return None if session is None else session.copy()

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
