"""What the tests share besides fixtures (those are in ``tests/conftest.py``).

- :mod:`.servers`: the shared PostgreSQL, MariaDB and Redis servers, and a
  private schema, database or key prefix on each.
- :mod:`.backends`: each kind of store with its users, raw rows and a record
  of what reaches the storage.
- :mod:`.apps`: the secret key, a hand-moved clock, test views, a Flask-Login app.
- :mod:`.clients`: requests and what a client's session looks like.
- :mod:`.processes`: servers the tests start (a thread, gunicorn) and Chromium.
- :mod:`.faults`: a TCP proxy that drops or refuses connections on demand.
- :mod:`.topologies`: the store contract on PgBouncer, Redis Cluster and
  Sentinel (the servers themselves are in :mod:`benchmarks.servers`).
- :mod:`.failover`: browsers logging in, reading and writing from threads
  while a failover test takes a server away.
"""
