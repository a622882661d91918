"""What runs in a worker process: the RQ worker and its work horse (``process.py``), the function
RQ runs for every tracked job (``runner.py``), the :class:`JobContext` a task receives and its
recorder, the heartbeat, the retry of database writes, and the SIGTERM rules.

Never imported by ``records``, ``jobs``, ``web`` or ``stats`` (tests/test_architecture.py
checks it). ``create_worker`` is also importable from here, where the docs before 0.2 sent
host worker scripts.
"""

from .process import create_worker

__all__ = ["create_worker"]
