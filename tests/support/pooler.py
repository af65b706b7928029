"""A PgBouncer of the test's own, in front of the shared PostgreSQL server.

Started on a free port of 127.0.0.1, bounded in time (it runs under
``timeout``), and stopped by its pid. PgBouncer refuses to run as root: as
root it runs as the ``postgres`` user, which Debian's PostgreSQL packages
create.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from .servers import IN_CI


def pgbouncer_problem() -> str | None:
    """Why PgBouncer cannot run here, or ``None``."""
    if shutil.which("pgbouncer") is None:
        return "pgbouncer is not installed (apt-get install pgbouncer)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PgBouncer as another user"
    return None


def require_pgbouncer() -> None:
    problem = pgbouncer_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: the pooler tests are required)")
        pytest.skip(problem)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgBouncer:
    """PgBouncer forwarding database ``test`` to the server of ``server_url``.

    :param server_url: The PostgreSQL server (a SQLAlchemy URL).
    :param max_client_conn: PgBouncer's limit of client connections.
    :param max_seconds: It stops by itself after this long.
    """

    def __init__(
        self,
        server_url: str,
        *,
        max_client_conn: int = 20,
        max_seconds: int = 120,
    ) -> None:
        server = sa.make_url(server_url)
        # A folder of its own in /tmp: the user PgBouncer runs as may not
        # reach pytest's temporary folders.
        self.directory = directory = Path(tempfile.mkdtemp(prefix="kitsession-pgbouncer-"))
        self.port = _free_port()
        self.log = directory / "pgbouncer.log"
        config = directory / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"{server.database} = host={server.host or '127.0.0.1'} port={server.port or 5432}"
            f" dbname={server.database} user={server.username or 'postgres'}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = any\n"
            "pool_mode = transaction\n"
            f"max_client_conn = {max_client_conn}\n"
            f"logfile = {self.log}\n"
        )
        command = ["timeout", "--kill-after=5", str(max_seconds), "pgbouncer", str(config)]
        if os.geteuid() == 0:
            os.chmod(directory, 0o777)
            command = ["runuser", "-u", "postgres", "--", *command]
        self.command = command
        self.url = server.set(host="127.0.0.1", port=self.port)
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PgBouncer:
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = self.log.read_text() if self.log.exists() else ""
                    self.stop()
                    raise RuntimeError(f"PgBouncer did not start:\n{log}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
