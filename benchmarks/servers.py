"""Servers that the scale-out tests and benchmarks start for themselves:
PgBouncer, a Redis Cluster, Redis Sentinel, and a PostgreSQL primary with a
streaming standby.

Each one listens on 127.0.0.1 only, on ports of its own, in a temporary
directory of its own. Every process runs under ``timeout(1)`` in a process
group of its own, so it stops by itself after ``max_seconds`` even if the
run is killed; leaving the ``with`` block stops it sooner, by pid. The
machine's own PostgreSQL, MariaDB and Redis are never touched, except that
PgBouncer pools connections to a database of this run on the PostgreSQL
server the tests use (created here, dropped after).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t
from functools import partial
from pathlib import Path

import redis
import sqlalchemy as sa


def _from_dead_run(name: str) -> bool:
    """Whether a ``kitsession_test_<pid>_...`` database belongs to a run of
    this machine that has ended without cleaning up (killed by a timeout, say).
    """
    parts = name.split("_")
    if len(parts) < 4 or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


#: PostgreSQL's server programs: Debian keeps them out of PATH.
POSTGRESQL_BIN_DIRS = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free on 127.0.0.1 now."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def find_program(name: str) -> str | None:
    """The path of a server program: PATH first, then Debian's PostgreSQL folders."""
    found = shutil.which(name)
    if found is not None:
        return found
    for folder in POSTGRESQL_BIN_DIRS:
        candidate = os.path.join(folder, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def wait_for(check: t.Callable[[], bool], what: str, timeout: float = 30) -> None:
    """Poll ``check`` until it is true; raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.05)


class Workspace:
    """A temporary directory, owned by ``user`` when the tests run as root
    (PostgreSQL and PgBouncer refuse to run as root), removed at the end.
    """

    def __init__(self, prefix: str, *, user: str | None = None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix=prefix))
        self.user: str | None = None
        if user is not None and os.geteuid() == 0:
            entry = pwd.getpwnam(user)
            os.chown(self.path, entry.pw_uid, entry.pw_gid)
            self.user = user

    def write(self, name: str, text: str) -> Path:
        path = self.path / name
        path.write_text(text)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def run(self, command: list[str], *, timeout: float = 60) -> str:
        """Run a command to its end as the workspace's user; return its output."""
        result = subprocess.run(
            command,
            cwd=self.path,
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{command[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


class Process:
    """One server process, bounded by ``timeout(1)``, in a process group of
    its own, stopped by pid.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        workspace: Workspace,
        *,
        max_seconds: int,
        log: str | None = None,
    ) -> None:
        self.name = name
        self.command = command
        self.workspace = workspace
        self.max_seconds = max_seconds
        self.log = workspace.path / (log or f"{name}.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["timeout", "--kill-after=5", str(self.max_seconds), *self.command],
                cwd=self.workspace.path,
                user=self.workspace.user,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(self, signum: int) -> None:
        """Send ``signum`` to the server's whole process group."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, *, timeout: float = 15) -> None:
        """Stop the server (``SIGKILL`` if it outlives ``timeout``) and wait for it."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self.send(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.send(signal.SIGKILL)
            process.wait(timeout=5)

    def kill(self) -> None:
        """``SIGKILL``: the server dies at once, as in a crash."""
        self.stop(signal.SIGKILL)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def problem_starting(what: str, error: BaseException, *logs: Process) -> str:
    text = "\n".join(f"--- {p.name}\n{p.output()[-2000:]}" for p in logs)
    return f"{what} could not start: {error}\n{text}"


# -- PgBouncer ----------------------------------------------------------------------


class PgBouncer:
    """PgBouncer (Debian's package) in front of a database of this test run
    on the shared PostgreSQL server.

    Two pooled databases: ``kitsession`` in transaction mode and
    ``kitsession_session`` in session mode (where each client connection keeps
    a server connection: the pool holds as many as the app may open), both on
    the same database. The server connections are used in turn
    (``server_round_robin``), so that a client's consecutive transactions
    really land on different server connections, as they do under load.

    :param postgresql_url: The shared server (its host, port and user).
    :param pool_size: Server connections per pooled database in transaction mode.
    :param max_seconds: Stops by itself after this long.
    """

    def __init__(self, postgresql_url: str, *, pool_size: int = 4, max_seconds: int = 900) -> None:
        self.pool_size = pool_size
        self.server = sa.make_url(postgresql_url)
        self.database = f"kitsession_test_{os.getpid()}_{secrets.token_hex(3)}_pgbouncer"
        self.admin = sa.create_engine(
            self.server, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT"
        )
        self.workspace = Workspace("kitsession-pgbouncer-", user="postgres")
        self.port = free_ports(1)[0]
        self.process = Process(
            "pgbouncer",
            [find_program("pgbouncer") or "pgbouncer", str(self.workspace.path / "pgbouncer.ini")],
            self.workspace,
            max_seconds=max_seconds,
        )

    def url(self, mode: str = "transaction") -> str:
        """The SQLAlchemy URL of the pooled database in ``mode``
        (``transaction`` or ``session``).
        """
        name = "kitsession" if mode == "transaction" else "kitsession_session"
        return f"postgresql+psycopg://{self.server.username}@127.0.0.1:{self.port}/{name}"

    @property
    def direct_url(self) -> str:
        """The same database, straight on the PostgreSQL server."""
        return self.server.set(database=self.database).render_as_string(hide_password=False)

    def __enter__(self) -> PgBouncer:
        self._drop_dead_databases()
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{self.database}"'))
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        program = find_program("pgbouncer")
        if program is None:
            raise FileNotFoundError("pgbouncer is not installed (apt-get install pgbouncer)")
        target = (
            f"host={self.server.host or '127.0.0.1'} port={self.server.port or 5432}"
            f" dbname={self.database} user={self.server.username}"
        )
        self.workspace.write("userlist.txt", f'"{self.server.username}" ""\n')
        self.workspace.write(
            "pgbouncer.ini",
            f"""[databases]
kitsession = {target} pool_mode=transaction
kitsession_session = {target} pool_mode=session pool_size=40

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.workspace.path / "userlist.txt"}
admin_users = {self.server.username}
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 200
server_round_robin = 1
query_wait_timeout = 15
ignore_startup_parameters = extra_float_digits
logfile = {self.workspace.path / "pgbouncer-own.log"}
""",
        )
        self.process.start()
        probe = sa.create_engine(self.url(), poolclass=sa.pool.NullPool)

        def answers() -> bool:
            if not self.process.running:
                raise RuntimeError(f"pgbouncer exited:\n{self.process.output()}")
            try:
                with probe.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
            except sa.exc.OperationalError:
                return False
            return True

        try:
            wait_for(answers, "PgBouncer answering", timeout=30)
        finally:
            probe.dispose()

    def _drop_dead_databases(self) -> None:
        with self.admin.connect() as connection:
            names = connection.execute(
                sa.text("SELECT datname FROM pg_database WHERE datname LIKE 'kitsession_test_%'")
            ).scalars()
            for name in [n for n in names if _from_dead_run(n)]:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def __exit__(self, *exc_info: object) -> None:
        self.process.stop(signal.SIGINT)
        with self.admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
        self.admin.dispose()
        self.workspace.remove()


# -- Redis Cluster and Sentinel ------------------------------------------------------


def redis_server_command(port: int, workspace: Workspace, *options: str) -> list[str]:
    """A redis-server on 127.0.0.1:``port`` that keeps nothing on disk."""
    return [
        shutil.which("redis-server") or "redis-server",
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(workspace.path),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        *options,
    ]


class RedisServer:
    """One redis-server of its own, for a measurement no other client disturbs."""

    def __init__(self, *, max_seconds: int = 900) -> None:
        self.workspace = Workspace("kitsession-redis-")
        self.port = free_ports(1)[0]
        self.process = Process(
            f"redis-{self.port}",
            redis_server_command(self.port, self.workspace),
            self.workspace,
            max_seconds=max_seconds,
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def __enter__(self) -> RedisServer:
        self.process.start()
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
        try:
            wait_for(partial(_pings, client), f"redis {self.port} answering")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.stop()
        self.workspace.remove()


class RedisClusterServers:
    """A Redis Cluster of ``masters`` masters, each with one replica.

    A node that fails is noticed after ``node_timeout_ms``; its replica then
    takes over its slots.
    """

    def __init__(
        self, *, masters: int = 3, node_timeout_ms: int = 1000, max_seconds: int = 900
    ) -> None:
        self.workspace = Workspace("kitsession-redis-cluster-")
        count = masters * 2
        ports = free_ports(count * 2)
        self.ports = ports[:count]
        self.masters = masters
        self.nodes: dict[int, Process] = {}
        for port, bus_port in zip(self.ports, ports[count:], strict=True):
            command = redis_server_command(
                port,
                self.workspace,
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(bus_port),
                "--cluster-config-file",
                f"nodes-{port}.conf",
                "--cluster-node-timeout",
                str(node_timeout_ms),
                # A replica may always take over, however long it was cut off:
                # the test kills masters on purpose.
                "--cluster-replica-validity-factor",
                "0",
            )
            self.nodes[port] = Process(
                f"redis-{port}", command, self.workspace, max_seconds=max_seconds
            )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def answers(self, port: int) -> bool:
        return _pings(self.client(port))

    def __enter__(self) -> RedisClusterServers:
        try:
            for node in self.nodes.values():
                node.start()
            for port in self.ports:
                wait_for(partial(self.answers, port), f"redis {port} answering")
            self.workspace.run(
                [
                    shutil.which("redis-cli") or "redis-cli",
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{port}" for port in self.ports),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ]
            )
            self.wait_until_healthy()
        except BaseException:
            self.__exit__()
            raise
        return self

    def roles(self) -> dict[int, str]:
        """``master`` or ``slave`` for each node that answers."""
        roles = {}
        for port, node in self.nodes.items():
            if not node.running:
                continue
            with contextlib.suppress(redis.RedisError):
                roles[port] = str(self.client(port).role()[0])
        return roles

    def healthy(self) -> bool:
        """Every node answers, sees the cluster as ok, and every master has
        a replica in sync.
        """
        try:
            for port in self.ports:
                if self.client(port).cluster("info")["cluster_state"] != "ok":
                    return False
            for port, role in self.roles().items():
                if role == "master":
                    replicas = self.client(port).info("replication")
                    if replicas.get("connected_slaves", 0) < 1:
                        return False
                    if replicas.get("slave0", {}).get("state") != "online":
                        return False
        except redis.RedisError:
            return False
        return len(self.roles()) == len(self.ports)

    def wait_until_healthy(self, timeout: float = 60) -> None:
        wait_for(self.healthy, "the Redis Cluster becoming healthy", timeout=timeout)

    def checkpoint(self) -> None:
        """Wait until every replica has every write its master had when this
        was called: what Redis's asynchronous replication can no longer lose.
        """
        wait_for_replicas([self.client(port) for port in self.master_ports()])

    def master_ports(self) -> list[int]:
        return sorted(port for port, role in self.roles().items() if role == "master")

    def restart(self, port: int) -> None:
        """Start a stopped node again: it rejoins the cluster (as a replica
        of whoever took over its slots).
        """
        self.nodes[port].start()
        wait_for(partial(self.answers, port), f"redis {port} answering")

    def __exit__(self, *exc_info: object) -> None:
        for node in self.nodes.values():
            node.stop()
        self.workspace.remove()


class RedisSentinelServers:
    """A Redis master, one replica, and three Sentinels watching them under
    the name ``kitsession``; the master is declared down after
    ``down_after_ms`` without an answer.
    """

    service = "kitsession"

    def __init__(self, *, down_after_ms: int = 1000, max_seconds: int = 900) -> None:
        self.workspace = Workspace("kitsession-redis-sentinel-")
        ports = free_ports(5)
        self.master_port, self.replica_port = ports[:2]
        self.sentinel_ports = ports[2:]
        self.down_after_ms = down_after_ms
        self.servers = {
            self.master_port: Process(
                f"redis-{self.master_port}",
                redis_server_command(self.master_port, self.workspace),
                self.workspace,
                max_seconds=max_seconds,
            ),
            self.replica_port: Process(
                f"redis-{self.replica_port}",
                redis_server_command(
                    self.replica_port,
                    self.workspace,
                    "--replicaof",
                    "127.0.0.1",
                    str(self.master_port),
                ),
                self.workspace,
                max_seconds=max_seconds,
            ),
        }
        self.sentinels = [
            Process(
                f"sentinel-{port}",
                [
                    shutil.which("redis-server") or "redis-server",
                    str(self.workspace.path / f"sentinel-{port}.conf"),
                    "--sentinel",
                ],
                self.workspace,
                max_seconds=max_seconds,
            )
            for port in self.sentinel_ports
        ]

    @property
    def sentinel_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    @property
    def url(self) -> str:
        """``KITSESSION_REDIS_URL`` with Sentinels: the name of the master set."""
        return f"redis://{self.service}/0"

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2, decode_responses=True)

    def answers(self, port: int) -> bool:
        return _pings(self.client(port))

    def __enter__(self) -> RedisSentinelServers:
        try:
            for server in self.servers.values():
                server.start()
            for port in self.servers:
                wait_for(partial(self.answers, port), f"redis {port} answering")
            for port, sentinel in zip(self.sentinel_ports, self.sentinels, strict=True):
                self.workspace.write(
                    f"sentinel-{port}.conf",
                    f"""bind 127.0.0.1
port {port}
protected-mode no
dir {self.workspace.path}
sentinel monitor {self.service} 127.0.0.1 {self.master_port} 2
sentinel down-after-milliseconds {self.service} {self.down_after_ms}
sentinel failover-timeout {self.service} 10000
sentinel parallel-syncs {self.service} 1
""",
                )
                sentinel.start()
            wait_for(self.healthy, "Redis Sentinel watching a master and its replica", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def checkpoint(self) -> None:
        """Wait until the replica has every write the master had when this
        was called.
        """
        master = self.master()
        assert master is not None
        wait_for_replicas([self.client(master[1])])

    def master(self) -> tuple[str, int] | None:
        """The master the first Sentinel that answers names."""
        for port in self.sentinel_ports:
            with contextlib.suppress(redis.RedisError):
                address: t.Any = self.client(port).sentinel_get_master_addr_by_name(self.service)
                if address:
                    return str(address[0]), int(address[1])
        return None

    def healthy(self) -> bool:
        """Every Sentinel knows the master, its replica and the other Sentinels."""
        try:
            for port in self.sentinel_ports:
                state: t.Any = self.client(port).sentinel_master(self.service)
                if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                    return False
            master = self.master()
            if master is None:
                return False
            replication = self.client(master[1]).info("replication")
            return bool(replication.get("slave0", {}).get("state") == "online")
        except (redis.RedisError, KeyError):
            return False

    def __exit__(self, *exc_info: object) -> None:
        for process in [*self.sentinels, *self.servers.values()]:
            process.stop()
        self.workspace.remove()


def wait_for_replicas(masters: list[redis.Redis], timeout: float = 30) -> None:
    """Wait until each master's replicas have acknowledged its replication
    offset as of now.
    """
    targets = [
        (master, int(master.info("replication")["master_repl_offset"])) for master in masters
    ]

    def caught_up() -> bool:
        for master, offset in targets:
            replication = master.info("replication")
            replica = replication.get("slave0")
            if not isinstance(replica, dict) or int(replica.get("offset", -1)) < offset:
                return False
        return True

    wait_for(caught_up, "the replicas catching up", timeout=timeout)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


# -- PostgreSQL primary and streaming standby --------------------------------------------


class PostgreSQLPair:
    """A PostgreSQL primary and a streaming standby of it, each a cluster of
    its own made by ``initdb`` and ``pg_basebackup`` in a temporary
    directory, on ports of their own.

    Replication is synchronous (``synchronous_standby_names = '*'``): a
    commit is acknowledged once the standby has it, so a failover loses no
    acknowledged session. :attr:`url` is the multi-host URL an app uses.

    :param with_standby: ``False`` for the primary alone (a server of its
        own for a measurement that nothing else disturbs).
    :param durable: Flush to disk as PostgreSQL does by default (``fsync``);
        off by default, for speed: these clusters are thrown away.
    """

    def __init__(
        self, *, with_standby: bool = True, durable: bool = False, max_seconds: int = 600
    ) -> None:
        self.with_standby = with_standby
        self.durable = durable
        self.workspace = Workspace("kitsession-postgresql-", user="postgres")
        self.primary_port, self.standby_port = free_ports(2)
        self.primary_dir = self.workspace.path / "primary"
        self.standby_dir = self.workspace.path / "standby"
        self.processes = {
            port: Process(
                f"postgres-{port}",
                [
                    find_program("postgres") or "postgres",
                    "-D",
                    str(directory),
                    "-p",
                    str(port),
                ],
                self.workspace,
                max_seconds=max_seconds,
            )
            for port, directory in (
                (self.primary_port, self.primary_dir),
                (self.standby_port, self.standby_dir),
            )
        }
        self.user = self.workspace.user or pwd.getpwuid(os.geteuid()).pw_name

    @property
    def primary(self) -> Process:
        return self.processes[self.primary_port]

    @property
    def standby(self) -> Process:
        return self.processes[self.standby_port]

    def direct_url(self, port: int) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{port}/postgres"

    @property
    def url(self) -> str:
        """Both servers; the app connects to whichever accepts writes."""
        return (
            f"postgresql+psycopg://{self.user}@/postgres?host=127.0.0.1:{self.primary_port}"
            f"&host=127.0.0.1:{self.standby_port}&target_session_attrs=read-write"
            "&connect_timeout=2"
        )

    def __enter__(self) -> PostgreSQLPair:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        initdb = find_program("initdb")
        basebackup = find_program("pg_basebackup")
        if initdb is None or basebackup is None:
            raise FileNotFoundError(
                "initdb and pg_basebackup are missing (apt-get install postgresql)"
            )
        self.workspace.run(
            [initdb, "-D", str(self.primary_dir), "--auth=trust", "-U", self.user, "--no-sync"]
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.workspace.path}'",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "hot_standby": "on",
            "fsync": "on" if self.durable else "off",
            "full_page_writes": "on" if self.durable else "off",
            "shared_buffers": "32MB",
            "max_connections": "50",
        }
        with open(self.primary_dir / "postgresql.auto.conf", "a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        with open(self.primary_dir / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        self.wait_until_accepting(self.primary_port)
        if not self.with_standby:
            return
        self.workspace.run(
            [
                basebackup,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary_port),
                "-U",
                self.user,
                "-D",
                str(self.standby_dir),
                "-R",
                "-X",
                "stream",
                "--no-sync",
            ]
        )
        self.standby.start()
        self.wait_until_accepting(self.standby_port)
        # Only now that the standby streams: before, every commit would wait for it.
        with self.admin(self.primary_port) as connection:
            connection.execute(sa.text("ALTER SYSTEM SET synchronous_standby_names = '*'"))
            connection.execute(sa.text("SELECT pg_reload_conf()"))
        wait_for(self.streaming_synchronously, "the standby streaming synchronously")

    @contextlib.contextmanager
    def admin(self, port: int) -> t.Iterator[sa.Connection]:
        engine = sa.create_engine(
            self.direct_url(port),
            poolclass=sa.pool.NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={"connect_timeout": 2},
        )
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    def accepting(self, port: int) -> bool:
        try:
            with self.admin(port) as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError:
            return False
        return True

    def wait_until_accepting(self, port: int, timeout: float = 60) -> None:
        process = self.processes[port]

        def ready() -> bool:
            if not process.running:
                raise RuntimeError(f"postgres on {port} exited:\n{process.output()}")
            return self.accepting(port)

        wait_for(ready, f"PostgreSQL on {port} accepting connections", timeout=timeout)

    def streaming_synchronously(self) -> bool:
        with self.admin(self.primary_port) as connection:
            states = connection.execute(
                sa.text("SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming'")
            ).scalars()
            return "sync" in list(states)

    def promote_standby(self) -> None:
        """Make the standby the primary (``pg_ctl promote``)."""
        pg_ctl = find_program("pg_ctl") or "pg_ctl"
        self.workspace.run([pg_ctl, "promote", "-D", str(self.standby_dir), "-w", "-t", "30"])

    def in_recovery(self, port: int) -> bool:
        with self.admin(port) as connection:
            return bool(connection.execute(sa.text("SELECT pg_is_in_recovery()")).scalar())

    def __exit__(self, *exc_info: object) -> None:
        for process in self.processes.values():
            # SIGQUIT: immediate shutdown; these clusters are thrown away.
            process.stop(signal.SIGQUIT)
        self.workspace.remove()
