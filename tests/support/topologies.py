"""What the scale-out tests share besides the servers (those are in
:mod:`benchmarks.servers`): the contract suite on another topology, and a
Redis backend for a cluster or a Sentinel-managed master.
"""

from __future__ import annotations

import functools
import inspect
import types
import typing as t

from benchmarks.servers import PgBouncer
from benchmarks.servers import PostgreSQLPair
from benchmarks.servers import RedisClusterServers
from benchmarks.servers import RedisSentinelServers

from flask_kitsession import RedisStore
from flask_kitsession.stores.base import SessionRecord
from flask_kitsession.stores.redis import _FIELDS as REDIS_FIELDS
from flask_kitsession.stores.redis import _glob_escape as glob_escape

from .backends import DictUsersBackend

__all__ = [
    "PgBouncer",
    "PostgreSQLPair",
    "RedisClusterServers",
    "RedisSentinelServers",
    "RedisTopologyBackend",
    "contract_tests",
]


# -- the contract on another topology ----------------------------------------------------

#: Fixtures through which a test runs on the parametrised ``backend``.
BACKEND_FIXTURES = frozenset({"backend", "app", "client"})


def contract_tests(
    module: types.ModuleType, fixtures: t.AbstractSet[str] = BACKEND_FIXTURES
) -> dict[str, t.Any]:
    """The tests of ``module`` that use one of ``fixtures`` (``backend``,
    directly or through ``app`` and ``client``, by default), to be collected
    again by a module that overrides those fixtures with a topology of its own.

    Each comes with the marks of its module (``pytestmark``: an app's
    configuration, say), which a test collected elsewhere would lose.
    """
    marks = getattr(module, "pytestmark", [])
    marks = marks if isinstance(marks, list) else [marks]

    def with_module_marks(test: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
        @functools.wraps(test)
        def run(*args: t.Any, **kwargs: t.Any) -> t.Any:
            return test(*args, **kwargs)

        for mark in marks:
            run = mark(run)
        return run

    return {
        name: with_module_marks(test)
        for name, test in vars(module).items()
        if name.startswith("test_")
        and callable(test)
        and fixtures & set(inspect.signature(test).parameters)
    }


class RedisTopologyBackend(DictUsersBackend):
    """A RedisStore on a cluster or a Sentinel-managed master, under a key
    prefix of its own; users kept in a dict, as an app would keep them in SQL.

    :param client: The client the store uses (``RedisCluster`` or the
        Sentinel's master client).
    """

    name = "redis"

    def __init__(self, client: t.Any, prefix: str) -> None:
        self.users: dict[int, t.Any] = {}
        self.client = client
        self.store: RedisStore = RedisStore(
            client, prefix=prefix, user_loader=self._load_user, user_id_type=int
        )

    def _keys(self) -> list[str]:
        pattern = glob_escape(self.store.prefix) + "*"
        return [key.decode() for key in self.client.scan_iter(match=pattern, count=1000)]

    def rows(self) -> list[dict[str, t.Any]]:
        rows = []
        for key in self._keys():
            if not key.startswith(self.store.session_key("")):
                continue
            values = self.client.hmget(key, REDIS_FIELDS)
            record = self.store._record(key.rpartition(":")[2], values)
            if record is not None:
                row = {f: getattr(record, f) for f in SessionRecord.__slots__ if f != "user"}
                row["data"] = values[0]
                rows.append(row)
        return rows

    def reset(self) -> None:
        # One key at a time: on a cluster, keys of different slots never
        # meet in one command.
        for key in self._keys():
            self.client.delete(key)
