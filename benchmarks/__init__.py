"""Benchmarks: kitsession side by side with the floor and the peers.

Run ``python -m benchmarks`` for the table; ``python -m benchmarks --help`` for
the options, and ``python -m benchmarks.scale``, ``python -m benchmarks.http``
and ``python -m benchmarks.memory`` for the other measurements.
"""
