"""Session stores: where sessions are kept."""

from __future__ import annotations

from .base import ALL_USERS as ALL_USERS
from .base import SessionRecord as SessionRecord
from .base import SessionStore as SessionStore
from .memory import MemoryStore as MemoryStore
from .redis import RedisStore as RedisStore
from .sql import SQLAlchemyStore as SQLAlchemyStore

__all__ = [
    "ALL_USERS",
    "MemoryStore",
    "RedisStore",
    "SQLAlchemyStore",
    "SessionRecord",
    "SessionStore",
]
