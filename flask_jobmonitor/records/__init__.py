"""What is recorded about jobs, and the rules for changing it: the SQL tables, the statuses and
their allowed moves, bulk writes, notifications, failure descriptions, and the progress kept
in Redis while SQL cannot be written.

Runs in web requests and in workers alike. Imports nothing from ``jobs``, ``worker``, ``web``
or ``stats`` (tests/test_architecture.py checks it).
"""
