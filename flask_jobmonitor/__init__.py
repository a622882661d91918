"""flask-jobmonitor: tracked background jobs on RQ for Flask apps.

Public API only; everything else is reached through these names.
"""

from . import csvsafe
from .errors import (
    ActionNotAllowed,
    ConfigError,
    EnqueueError,
    FileNotInJob,
    FileTooLarge,
    InvalidJobArguments,
    JobFailed,
    JobMonitorError,
    JobNotFound,
    NotInitialized,
    PauseRequested,
    PermissionDenied,
    RunSuperseded,
    StopRequested,
    StorageError,
    TransitionRefused,
    UnknownTask,
    UnsafeLink,
)
from .extension import JobMonitor
from .links import same_site_path
from .records.models import Job, JobFile, JobLog, JobNotification, JobStep, JobSubtask
from .records.status import JobStatus
from .state import JobMonitorState
from .tasks import TrackedTask
from .worker.context import JobContext, Step

__all__ = [
    "ActionNotAllowed",
    "ConfigError",
    "EnqueueError",
    "FileNotInJob",
    "FileTooLarge",
    "InvalidJobArguments",
    "Job",
    "JobContext",
    "JobFailed",
    "JobFile",
    "JobLog",
    "JobMonitor",
    "JobMonitorError",
    "JobMonitorState",
    "JobNotFound",
    "JobNotification",
    "JobStatus",
    "JobStep",
    "JobSubtask",
    "NotInitialized",
    "PauseRequested",
    "PermissionDenied",
    "RunSuperseded",
    "Step",
    "StopRequested",
    "StorageError",
    "TrackedTask",
    "TransitionRefused",
    "UnknownTask",
    "UnsafeLink",
    "csvsafe",
    "same_site_path",
]
__version__ = "0.1.0"
