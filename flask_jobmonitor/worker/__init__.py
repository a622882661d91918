"""What runs in a worker process: the RQ worker and its work horse (``process.py``), the function
RQ runs for every tracked job (``runner.py``), the :class:`JobContext` a task receives and its
recorder, the worker/horse hand-over (``handover.py``), the heartbeat, the retry of database
writes, and the SIGTERM rules.

``records``, ``jobs``, ``web`` and ``stats`` never import from here (tests/test_architecture.py
checks it). ``flask_jobmonitor.worker.create_worker``, where worker scripts were sent before the
package had folders, still works: it is looked up on first use, so that importing a module of
this folder does not load the whole worker.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "create_worker":
        from .process import create_worker  # lazy re-export: the old path of create_worker

        return create_worker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
