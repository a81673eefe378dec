"""Chaos runs: a workload on one kazoo client with our handler, under a seeded schedule
of combined faults against a real ZooKeeper ensemble, with checks at the end.

``make chaos`` (``python -m chaos``) runs each mode in its own process
(:mod:`chaos._run`): ``shared`` monkey-patched, ``shared-asyncio`` monkey-patched
on eventlet's asyncio hub (with coroutine callers), ``isolated`` unpatched.  Modules:
:mod:`._schedule` (the seeded fault schedule, a pure function of the seed),
:mod:`._history` (every call: start, end, caller kind, outcome),
:mod:`._workload` (the callers), :mod:`._faults` (injection and repair),
:mod:`._checks` (the end checks), :mod:`._report`.

This package must import nothing at top level: the shared-mode process
monkey-patches before anything imports eventlet or kazoo.
"""
