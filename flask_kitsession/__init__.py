"""flask-kitsession: server-side Flask sessions in a SQL database, tied to users."""

from __future__ import annotations

from .decorators import fresh_login_required
from .decorators import with_delete_session
from .decorators import with_new_session
from .exceptions import KitSessionError
from .exceptions import SessionDataError
from .exceptions import SessionExistsError
from .exceptions import StoreUnavailableError
from .exceptions import UnknownUserError
from .extension import KitSession
from .helpers import create_session
from .helpers import credentials_changed
from .helpers import current_session
from .helpers import get_all_sessions
from .helpers import get_session
from .helpers import get_sessions_for_user
from .helpers import purge_expired
from .helpers import refresh_authentication
from .helpers import regenerate
from .helpers import remove_all_sessions_for_user
from .helpers import remove_session
from .helpers import remove_session_cookie
from .helpers import set_session
from .helpers import set_session_cookie
from .interface import KitSessionInterface
from .models import metadata
from .session import ServerSession
from .settings import Settings
from .signals import session_authenticated
from .signals import session_created
from .signals import session_revoked
from .signals import session_rotated
from .stores import MemoryStore
from .stores import RedisStore
from .stores import SessionRecord
from .stores import SessionStore
from .stores import SQLAlchemyStore

__all__ = [
    "KitSession",
    "KitSessionError",
    "KitSessionInterface",
    "MemoryStore",
    "RedisStore",
    "SQLAlchemyStore",
    "ServerSession",
    "SessionDataError",
    "SessionExistsError",
    "SessionRecord",
    "SessionStore",
    "Settings",
    "StoreUnavailableError",
    "UnknownUserError",
    "create_session",
    "credentials_changed",
    "current_session",
    "fresh_login_required",
    "get_all_sessions",
    "get_session",
    "get_sessions_for_user",
    "metadata",
    "purge_expired",
    "refresh_authentication",
    "regenerate",
    "remove_all_sessions_for_user",
    "remove_session",
    "remove_session_cookie",
    "session_authenticated",
    "session_created",
    "session_revoked",
    "session_rotated",
    "set_session",
    "set_session_cookie",
    "with_delete_session",
    "with_new_session",
]
