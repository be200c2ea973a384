"""The store seam: every method an implementation provides, each documented."""

from __future__ import annotations

from abc import ABC, abstractmethod

from engine.conversation import Session


class SessionStore(ABC):
    """Keeps one `Session` per key. Implementations must make `save` atomic: after a crash
    a session is either entirely the old one or entirely the new one."""

    @abstractmethod
    def load(self, key: str) -> Session | None:
        """The session stored under `key`, or None for someone new."""

    @abstractmethod
    def save(self, session: Session) -> None:
        """Store `session` under `session.key`, replacing what was there."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Forget everything stored under `key` (no error if there is nothing)."""

    @abstractmethod
    def purge_idle(self, older_than: float) -> int:
        """Delete sessions last updated before the UNIX time `older_than`; how many."""

    @abstractmethod
    def count(self) -> int:
        """How many sessions are stored."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and files."""
