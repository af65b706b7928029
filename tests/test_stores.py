"""The store contract, run against every store."""

from __future__ import annotations

import dataclasses
import threading
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest

from flask_kitsession import SessionExistsError
from flask_kitsession import SessionRecord
from flask_kitsession import SessionStore
from flask_kitsession import UnknownUserError
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .support.backends import Backend
from .support.backends import SQLBackend

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def make_record(
    user_id: object = None, *, data: dict[str, object] | None = None, expires_in: float = 3600
) -> SessionRecord:
    if data is None:
        data = {"user_id": user_id} if user_id is not None else {"anonymous": True}
    return SessionRecord(
        id=session_id_for(new_token()),
        data=data,
        user_id=user_id,
        created_at=NOW,
        updated_at=NOW,
        last_seen_at=NOW,
        expires_at=NOW + timedelta(seconds=expires_in),
        authenticated_at=NOW if user_id is not None else None,
        user_agent="Agent/1.0",
        ip_address="192.0.2.1",
    )


def test_create_then_get(backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    record = make_record(user_id, data={"user_id": user_id, "when": NOW, "pair": (1, 2)})
    backend.store.create(record)
    found = backend.store.get(record.id, NOW)
    assert found is not None
    assert found.data == {"user_id": user_id, "when": NOW, "pair": (1, 2)}
    assert found.user_id == user_id
    assert found.user is not None and found.user.email == "ada@example.com"
    for field in ("created_at", "last_seen_at", "expires_at", "authenticated_at"):
        assert getattr(found, field) == getattr(record, field)
        assert getattr(found, field).tzinfo is not None
    assert (found.user_agent, found.ip_address) == ("Agent/1.0", "192.0.2.1")


def test_get_unknown_and_expired(backend: Backend) -> None:
    record = make_record(expires_in=60)
    backend.store.create(record)
    assert backend.store.get("0" * 64, NOW) is None
    assert backend.store.get(record.id, NOW + timedelta(seconds=59)) is not None
    assert backend.store.get(record.id, NOW + timedelta(seconds=60)) is None


def test_create_refuses_an_existing_id(backend: Backend) -> None:
    record = make_record()
    backend.store.create(record)
    with pytest.raises(SessionExistsError):
        backend.store.create(record)


def test_create_replacing_another_session(backend: Backend) -> None:
    old = make_record()
    new = make_record()
    backend.store.create(old)
    backend.store.create(new, replaces=old.id)
    assert backend.store.get(old.id, NOW) is None
    assert backend.store.get(new.id, NOW) is not None


def test_update_changes_data_and_user(backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    record = make_record()
    backend.store.create(record)
    later = NOW + timedelta(minutes=5)
    changed = dataclasses.replace(
        record,
        data={"user_id": user_id},
        user_id=user_id,
        updated_at=later,
        last_seen_at=later,
        expires_at=later + timedelta(hours=1),
    )
    assert backend.store.update(changed) is True
    found = backend.store.get(record.id, later)
    assert found is not None
    assert found.data == {"user_id": user_id} and found.user_id == user_id
    assert found.expires_at == later + timedelta(hours=1)
    assert found.created_at == NOW


def test_update_never_recreates_a_deleted_session(backend: Backend) -> None:
    record = make_record()
    backend.store.create(record)
    assert backend.store.delete(record.id) is True
    assert backend.store.update(dataclasses.replace(record, data={"late": True})) is False
    assert backend.store.get(record.id, NOW) is None
    assert backend.rows() == []


def test_update_renames_to_a_new_id(backend: Backend) -> None:
    record = make_record()
    backend.store.create(record)
    renamed = dataclasses.replace(record, id=session_id_for(new_token()))
    assert backend.store.update(renamed, previous_id=record.id) is True
    assert backend.store.get(record.id, NOW) is None
    assert backend.store.get(renamed.id, NOW) is not None


def test_touch(backend: Backend) -> None:
    record = make_record()
    backend.store.create(record)
    later = NOW + timedelta(minutes=5)
    assert backend.store.touch(
        record.id,
        last_seen_at=later,
        expires_at=later + timedelta(hours=1),
        ip_address="198.51.100.7",
    )
    found = backend.store.get(record.id, later)
    assert found is not None
    assert found.last_seen_at == later and found.ip_address == "198.51.100.7"
    assert found.data == record.data
    assert not backend.store.touch("0" * 64, last_seen_at=later, expires_at=later)


def test_delete_all_for_user_keeps_one_and_other_users(backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    adas = [make_record(ada) for _ in range(4)]
    bobs = make_record(bob)
    anonymous = make_record()
    for record in [*adas, bobs, anonymous]:
        backend.store.create(record)
    assert backend.store.delete_all_for_user(ada, keep=adas[0].id) == 3
    assert backend.store.get(adas[0].id, NOW) is not None
    assert backend.store.get(bobs.id, NOW) is not None
    assert backend.store.get(anonymous.id, NOW) is not None
    assert backend.store.delete_all_for_user(ada) == 1
    assert backend.store.delete_all_for_user(ada) == 0


def test_user_ids_from_flask_login_strings(backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    record = make_record(data={"_user_id": str(ada)})
    record.user_id = backend.store.user_id_from(record.data)
    backend.store.create(record)
    found = backend.store.get(record.id, NOW)
    assert found is not None and found.user is not None
    assert found.user.email == "ada@example.com"
    assert backend.store.delete_all_for_user(str(ada)) == 1


def test_user_id_rule() -> None:
    store = SessionStore()
    assert store.user_id_from({"id": 1, "user_id": 2}) == 2
    assert store.user_id_from({"userId": 3, "id": 4}) == 3
    assert store.user_id_from({"_user_id": "5"}) == "5"
    assert store.user_id_from({"id": 6}) == 6
    assert store.user_id_from({"user_id": None, "id": 7}) == 7
    assert store.user_id_from({}) is None


def test_iterate(backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    adas = [make_record(ada) for _ in range(5)]
    others = [make_record() for _ in range(4)]
    expired = make_record(expires_in=-1)
    for record in [*adas, *others, expired]:
        backend.store.create(record)
    everything = {r.id for r in backend.store.iterate(batch_size=2)}
    # A store that expires sessions by itself (Redis) keeps none that is
    # expired when written; the others keep it until purge_expired().
    stored = [*adas, *others, expired] if backend.store.needs_purge else [*adas, *others]
    assert everything == {r.id for r in stored}
    live = {r.id for r in backend.store.iterate(now=NOW, batch_size=3)}
    assert live == everything - {expired.id}
    assert {r.id for r in backend.store.iterate(user_id=ada, batch_size=2)} == {r.id for r in adas}
    anonymous = {r.id for r in backend.store.iterate(user_id=None, now=NOW)}
    assert anonymous == {r.id for r in others}


def test_purge_expired(backend: Backend) -> None:
    live = [make_record() for _ in range(3)]
    dead = [make_record(expires_in=-10 - n) for n in range(7)]
    for record in [*live, *dead]:
        backend.store.create(record)
    purged = backend.store.purge_expired(NOW, batch_size=3)
    assert purged == (7 if backend.store.needs_purge else 0)
    assert {r.id for r in backend.store.iterate()} == {r.id for r in live}
    assert backend.store.purge_expired(NOW) == 0


def test_purge_expired_on_the_stores_own_clock(backend: Backend) -> None:
    real_now = datetime.now(timezone.utc)
    live, dead = make_record(), make_record()
    for record, expires_in in ((live, 300), (dead, -5)):
        record.created_at = record.updated_at = record.last_seen_at = real_now - timedelta(hours=1)
        record.expires_at = real_now + timedelta(seconds=expires_in)
        backend.store.create(record)
    if backend.store.needs_purge:
        assert backend.store.purge_expired(batch_size=10) == 1
        assert {r.id for r in backend.store.iterate()} == {live.id}
    else:
        # Expiry is the storage's own business (Redis TTLs): nothing to purge.
        assert backend.store.purge_expired(batch_size=10) == 0
        assert {r.id for r in backend.store.iterate(now=real_now)} == {live.id}


def test_unknown_user_is_refused(sql_backend: SQLBackend) -> None:
    # The memory store keeps no user table to check against; SQL stores do.
    record = make_record(987654)
    with pytest.raises(UnknownUserError, match="does not exist"):
        sql_backend.store.create(record)
    assert sql_backend.rows() == []
    existing = make_record()
    sql_backend.store.create(existing)
    with pytest.raises(UnknownUserError):
        sql_backend.store.update(dataclasses.replace(existing, user_id=987654))
    [row] = sql_backend.rows()
    assert row["user_id"] is None and row["data"] == {"anonymous": True}


def test_deleting_a_user_deletes_their_sessions(backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    record = make_record(ada)
    backend.store.create(record)
    backend.delete_user(ada)
    assert backend.store.get(record.id, NOW) is None


def test_concurrent_saves_never_resurrect_revoked_sessions(backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    records = [make_record(ada) for _ in range(8)]
    keep = records[0]
    for record in records:
        backend.store.create(record)
    stop = threading.Event()
    errors: list[BaseException] = []

    def save_forever(record: SessionRecord) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                backend.store.update(dataclasses.replace(record, data={"user_id": ada, "n": n}))
                backend.store.touch(
                    record.id, last_seen_at=NOW, expires_at=NOW + timedelta(hours=1)
                )
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=save_forever, args=(r,)) for r in records]
    for thread in threads:
        thread.start()
    try:
        deleted = backend.store.delete_all_for_user(ada, keep=keep.id)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == []
    assert deleted == 7
    alive = {r.id for r in backend.store.iterate(user_id=ada)}
    assert alive == {keep.id}
    kept = backend.store.get(keep.id, NOW)
    assert kept is not None and kept.data["user_id"] == ada and kept.data["n"] >= 1
