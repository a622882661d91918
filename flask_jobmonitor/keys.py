"""Every Redis key flask-jobmonitor writes, in one place (RQ's own keys are RQ's business)."""

from __future__ import annotations

PREFIX = "jobmonitor:"
#: How long a control signal lives if the job never reads it (it ended, or its worker died).
CONTROL_TTL_SECONDS = 24 * 3600


def control_key(job_id: str) -> str:
    """The signal a running job polls: ``stop`` or ``pause``."""
    return f"{PREFIX}control:{job_id}"


def live_key(job_id: str) -> str:
    """A running job's progress while its SQL record cannot be written (see live.py)."""
    return f"{PREFIX}live:{job_id}"


#: "Pause all" (pause_all.py): since when and by whom jobs are paused; absent when they are not.
PAUSE_ALL_KEY = f"{PREFIX}pause-all"
#: The jobs a "pause all" asked to pause: job id -> when it was asked (ISO, UTC).
PAUSED_BY_PAUSE_ALL_KEY = f"{PREFIX}pause-all:jobs"
