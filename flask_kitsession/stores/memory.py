"""A store in the process's memory: for tests and development."""

from __future__ import annotations

import dataclasses
import threading
import typing as t
from datetime import datetime

from ..exceptions import SessionExistsError
from ..exceptions import UnknownUserError
from ..models import utc_now
from ..serialization import SessionSerializer
from ..userkey import UserKeyType
from .base import ALL_USERS
from .base import NO_USER
from .base import SessionRecord
from .base import SessionStore


class MemoryStore(SessionStore):
    """Keeps sessions in a dict guarded by a lock.

    Data is kept as JSON text, exactly as other stores keep it, so what a
    test sees here is what production sees. Sessions live as long as the
    process and are not shared between processes: use it for tests and
    development, not behind a multi-worker server.

    :param user_loader: Returns the user for a user id, so that
        ``session.user`` works; without it ``session.user`` is ``None``. A
        session whose user it no longer finds counts as gone.
    :param user_id_type: The type of user ids (``int``, ``str``,
        ``uuid.UUID``, or a :class:`~flask_kitsession.userkey.UserKeyType`),
        so that ids written as strings (Flask-Login's) find their user.
    :param serializer: See :class:`SessionStore`.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        *,
        user_loader: t.Callable[[t.Any], t.Any] | None = None,
        user_id_type: type | UserKeyType | None = None,
        serializer: SessionSerializer | None = None,
    ) -> None:
        super().__init__(serializer=serializer)
        self.user_loader = user_loader
        self.user_id_type = user_id_type
        self._lock = threading.Lock()
        # id -> (record without data, data as JSON text)
        self._rows: dict[str, tuple[SessionRecord, str]] = {}
        self._by_user: dict[t.Any, set[str]] = {}

    def load_user(self, user_id: t.Any) -> t.Any:
        if self.user_loader is None or user_id is None:
            return None
        user_id = self._lookup_id(user_id)
        return None if user_id is NO_USER else self.user_loader(user_id)

    def check_user(self, user_id: t.Any) -> None:
        """See :meth:`SessionStore.check_user`: asks ``user_loader``, if any."""
        user_id = self.coerce_user_id(user_id)
        if self.user_loader is not None and self.load_user(user_id) is None:
            raise UnknownUserError("The session names a user whom user_loader does not find.")

    def _decode(self, stored: tuple[SessionRecord, str], *, with_user: bool) -> SessionRecord:
        record, text = stored
        return dataclasses.replace(
            record,
            data=self.serializer.loads(text),
            user=self.load_user(record.user_id) if with_user else None,
        )

    def _put(self, record: SessionRecord, text: str) -> None:
        # record.user_id was converted where it came in (user_id_from).
        self._rows[record.id] = (dataclasses.replace(record, data={}, user=None), text)
        if record.user_id is not None:
            self._by_user.setdefault(record.user_id, set()).add(record.id)

    def _pop(self, session_id: str) -> SessionRecord | None:
        stored = self._rows.pop(session_id, None)
        if stored is None:
            return None
        record = stored[0]
        if record.user_id is not None:
            ids = self._by_user.get(record.user_id)
            if ids is not None:
                ids.discard(session_id)
                if not ids:
                    del self._by_user[record.user_id]
        return record

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        with self._lock:
            stored = self._rows.get(session_id)
        if stored is None or stored[0].expires_at <= now:
            return None
        record = self._decode(stored, with_user=True)
        if record.user is None and record.user_id is not None and self.user_loader is not None:
            # The user is gone: so is the session, as with RedisStore (and
            # ON DELETE CASCADE in SQL).
            return None
        return record

    def create(self, record: SessionRecord, *, replaces: str | None = None) -> None:
        text = self.serializer.dumps(record.data)
        with self._lock:
            if record.id in self._rows:
                raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
            if replaces is not None:
                self._pop(replaces)
            self._put(record, text)

    def update(self, record: SessionRecord, *, previous_id: str | None = None) -> bool:
        text = self.serializer.dumps(record.data)
        current_id = previous_id if previous_id is not None else record.id
        with self._lock:
            if current_id not in self._rows:
                return False
            if current_id != record.id and record.id in self._rows:
                raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
            self._pop(current_id)
            self._put(record, text)
        return True

    def touch(
        self,
        session_id: str,
        *,
        last_seen_at: datetime,
        expires_at: datetime,
        ip_address: str | None = None,
    ) -> bool:
        with self._lock:
            stored = self._rows.get(session_id)
            if stored is None:
                return False
            record, text = stored
            record = dataclasses.replace(
                record,
                last_seen_at=last_seen_at,
                expires_at=expires_at,
                ip_address=ip_address if ip_address is not None else record.ip_address,
            )
            self._rows[session_id] = (record, text)
        return True

    def delete(self, session_id: str) -> bool:
        with self._lock:
            return self._pop(session_id) is not None

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        user_id = self._lookup_id(user_id)
        if user_id is NO_USER:
            return 0
        with self._lock:
            ids = [i for i in self._by_user.get(user_id, ()) if i != keep]
            for session_id in ids:
                self._pop(session_id)
        return len(ids)

    def iterate(
        self,
        *,
        user_id: t.Any = ALL_USERS,
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> t.Iterator[SessionRecord]:
        if user_id is not ALL_USERS and user_id is not None:
            user_id = self._lookup_id(user_id)
            if user_id is NO_USER:
                return
        after = ""
        while True:
            with self._lock:
                if user_id is ALL_USERS:
                    candidates: t.Iterable[str] = self._rows
                elif user_id is None:
                    candidates = (i for i, (r, _) in self._rows.items() if r.user_id is None)
                else:
                    candidates = self._by_user.get(user_id, ())
                ids = sorted(i for i in candidates if i > after)[:batch_size]
                batch = [self._rows[i] for i in ids]
            for stored in batch:
                if now is None or stored[0].expires_at > now:
                    yield self._decode(stored, with_user=True)
            if len(ids) < batch_size:
                return
            after = ids[-1]

    def purge_expired(
        self,
        now: datetime | None = None,
        *,
        batch_size: int = 1000,
        progress: t.Callable[[int], None] | None = None,
    ) -> int:
        if now is None:
            now = utc_now()
        deleted = 0
        while True:
            with self._lock:
                expired = [i for i, (r, _) in self._rows.items() if r.expires_at <= now][
                    :batch_size
                ]
                for session_id in expired:
                    self._pop(session_id)
            deleted += len(expired)
            if progress is not None:
                progress(len(expired))
            if len(expired) < batch_size:
                return deleted

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)
