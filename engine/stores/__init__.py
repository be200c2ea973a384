"""Where sessions live between messages: one small ABC and its implementations."""

from engine.stores.base import SessionStore
from engine.stores.memory import MemoryStore
from engine.stores.sqlite import SQLiteStore

__all__ = ["MemoryStore", "SQLiteStore", "SessionStore"]
