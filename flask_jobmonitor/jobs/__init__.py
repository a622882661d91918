"""Doing things to jobs: enqueue, control (stop, resume, cancel, restart, delete, priority;
each action defined once in its registry, actions.py says what an action is), child jobs and
families, control signals, pause all, schedules, and the recovery of jobs whose worker died.
``rq.py`` is the only module that reaches into RQ beyond its public API.

Called from web requests, the CLI and workers; imports nothing from ``worker`` or ``web``
(tests/test_architecture.py checks it). It may keep ``stats`` up to date: a delete marks the
statistics of its hours stale, the retention job prepares closed days.
"""
