"""Faults between the app and its database, staged on the test's own
connections only.
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing as t


class TCPProxy:
    """Forwards 127.0.0.1:<port> to a server, and fails on demand: what a
    database restart or outage looks like to the app, for this proxy's
    connections only (the server itself is shared and never touched).

    - :meth:`drop_connections`: every open connection is reset (as when the
      server restarts and its backends die); new ones are accepted.
    - :meth:`stop`: the same, and new connections are refused (the server is
      down, or the port is closed) until :meth:`start`.

    Bounded like every server a test starts: it stops by itself after
    ``max_seconds``. Connections are pumped by daemon threads.

    :param target: ``(host, port)`` of the server.
    """

    def __init__(self, target: tuple[str, int], *, max_seconds: float = 300) -> None:
        import socket

        self._socket = socket
        self.target = target
        self.port = 0
        #: How many connections it has accepted so far.
        self.accepted = 0
        #: How many connections the server has ended (an orderly close).
        self.closed_by_server = 0
        self._upstreams: set[t.Any] = set()
        self._lock = threading.Lock()
        self._open: set[t.Any] = set()
        #: Sockets whose incoming direction has ended in an orderly way.
        self._ended: dict[t.Any, bool] = {}
        self._listener: t.Any = None
        self._accepting: threading.Thread | None = None
        self._timer = threading.Timer(max_seconds, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> TCPProxy:
        self.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.stop()

    def start(self) -> None:
        """Listen (again, on the same port) and forward what arrives."""
        socket = self._socket
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        """Refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
            self._accepting = None
        self.drop_connections()

    def drop_connections(self) -> int:
        """Reset every open connection; return how many there were."""
        with self._lock:
            sockets, self._open = self._open, set()
            self._ended.clear()
            self._upstreams.clear()
        for sock in sockets:
            self._reset(sock)
        return len(sockets) // 2

    def wait_for_server_closes(self, count: int, timeout: float = 10) -> None:
        """Wait until the server has closed ``count`` connections in all
        (and the proxy has passed each close on to the client).
        """
        deadline = time.monotonic() + timeout
        while self.closed_by_server < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server closed {self.closed_by_server} of {count}")
            time.sleep(0.005)

    def _reset(self, sock: t.Any) -> None:
        import struct

        socket = self._socket
        with contextlib.suppress(OSError):
            # Linger 0: close with RST, as a dead server's kernel answers.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self, listener: t.Any) -> None:
        socket = self._socket
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    self._reset(client)
                    self._reset(upstream)
                    return
                self._open.update((client, upstream))
                self._upstreams.add(upstream)
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: t.Any, sink: t.Any) -> None:
        socket = self._socket
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            # A reset on one side resets the other, as through a real network.
            with self._lock:
                for sock in (source, sink):
                    self._open.discard(sock)
                    self._upstreams.discard(sock)
            self._reset(source)
            self._reset(sink)
            return
        # An orderly end on one side is passed on as one (the server's last
        # message must still arrive); the other direction ends by itself.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            self._ended[source] = True
            if source in self._upstreams:
                self._upstreams.discard(source)
                self.closed_by_server += 1
            both = self._ended.get(sink, False)
            if both:
                for sock in (source, sink):
                    self._open.discard(sock)
                    self._ended.pop(sock, None)
        if both:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()
