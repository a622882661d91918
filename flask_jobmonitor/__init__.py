"""flask-jobmonitor: tracked background jobs on RQ for Flask apps.

Public API only: what the docs tell a host app to import is here, and everything else is
reached through these names. ``control`` is the module of the job actions (``control.stop``,
``control.resume`` ...), for code that acts on jobs outside a request.
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
from .events import job_deleted, job_ended, job_queued, job_retrying, job_started, job_stopped, step_finished
from .extension import JobMonitor
from .jobs import control
from .links import same_site_path
from .permissions import JobPermissions
from .records.migrate import stamp, upgrade
from .records.models import (
    Base,
    Job,
    JobAttempt,
    JobFile,
    JobLog,
    JobNotification,
    JobStep,
    JobSubtask,
    create_sqlite_search,
)
from .records.status import JobStatus
from .state import JobMonitorState
from .storage import LocalStorage, Storage
from .tasks import RetryPolicy, TrackedTask
from .worker.context import JobContext, Step
from .worker.process import create_worker

__all__ = [
    "ActionNotAllowed",
    "Base",
    "ConfigError",
    "EnqueueError",
    "FileNotInJob",
    "FileTooLarge",
    "InvalidJobArguments",
    "Job",
    "JobAttempt",
    "JobContext",
    "JobFailed",
    "JobFile",
    "JobLog",
    "JobMonitor",
    "JobMonitorError",
    "JobMonitorState",
    "JobNotFound",
    "JobNotification",
    "JobPermissions",
    "JobStatus",
    "JobStep",
    "JobSubtask",
    "LocalStorage",
    "NotInitialized",
    "PauseRequested",
    "PermissionDenied",
    "RetryPolicy",
    "RunSuperseded",
    "Step",
    "StopRequested",
    "Storage",
    "StorageError",
    "TrackedTask",
    "TransitionRefused",
    "UnknownTask",
    "UnsafeLink",
    "control",
    "create_sqlite_search",
    "create_worker",
    "csvsafe",
    "job_deleted",
    "job_ended",
    "job_queued",
    "job_retrying",
    "job_started",
    "job_stopped",
    "same_site_path",
    "stamp",
    "step_finished",
    "upgrade",
]
__version__ = "0.2.0"
