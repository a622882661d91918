"""Every Redis key flask-jobmonitor writes, in one place: no other module builds a key.

RQ's own keys are RQ's business: they are reached through RQ's API, or through jobs/rq.py where
RQ offers none.
"""

from __future__ import annotations

#: What every key of this package starts with.
PREFIX = "jobmonitor:"
#: How long a control signal lives if the job never reads it (it ended, or its worker died).
CONTROL_TTL_SECONDS = 24 * 3600


def control_key(job_id: str) -> str:
    """The signal a running job polls: ``stop``, ``cancel`` or ``pause`` (signals.py)."""
    return f"{PREFIX}control:{job_id}"


def children_lock_key(root_id: str) -> str:
    """The lock around releasing held child jobs of one root into RQ (children.py)."""
    return f"{PREFIX}children-lock:{root_id}"


def live_key(job_id: str) -> str:
    """A running job's progress while its SQL record cannot be written (see live.py)."""
    return f"{PREFIX}live:{job_id}"


#: One recovery pass at a time across all workers (maintenance.py): set with NX for the interval.
RECOVERY_LOCK = f"{PREFIX}recovery-lock"
#: "Pause all" (pause_all.py): since when and by whom jobs are paused; absent when they are not.
PAUSE_ALL_KEY = f"{PREFIX}pause-all"
#: The jobs a "pause all" asked to pause: job id -> when it was asked (ISO, UTC).
PAUSED_BY_PAUSE_ALL_KEY = f"{PREFIX}pause-all:jobs"


def metrics_key(app_queue: str, name: str) -> str:
    """A hash of the Prometheus counters (stats/metrics.py) ``name`` (``started``, ``ended``,
    ``wait``, ``run``) of the app whose default queue is ``app_queue``: apps that share a Redis
    keep counters of their own, as they keep queues of their own."""
    return f"{PREFIX}metrics:{app_queue}:{name}"
